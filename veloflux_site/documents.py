"""Reading untrusted JSON and YAML with bounds: nesting depth, and no YAML anchors or aliases.

Every request document (API bodies, configuration files, backups) is read here, so a small
request cannot make a large amount of work: a YAML alias repeats a node without repeating its
text ("billion laughs": 458 bytes became 52 MB), and deep nesting overflows the recursive
code that walks a document (a ``RecursionError`` is a 500).

YAML anchors and aliases are refused outright (a configuration never needs them), nesting
deeper than ``settings.API_MAX_DEPTH`` is refused for both formats, and both checks run
before the document is built. The errors are domain errors; ``veloflux_site.api.errors``
maps them to HTTP (400 with the error's code). Sizes are bounded before this: Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` and ``veloflux_site.api.body_limit`` at the ASGI edge.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import yaml
from django.conf import settings

# libyaml when it is there: 5x faster than the pure-Python parser on a large document.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENING = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSING = (yaml.MappingEndEvent, yaml.SequenceEndEvent)

# A JSON string (escapes included) and the brackets left once strings are removed.
# The closing quote is optional so that an unterminated string ends the scan (linear time on any input).
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")
_JSON_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class DocumentRefused(ValueError):
    """A document that is not read at all; ``code`` names the reason for the API."""

    code = "invalid_document"
    status = 400


class TooDeep(DocumentRefused):
    code = "too_deeply_nested"


class YamlAliasRefused(DocumentRefused):
    code = "yaml_alias_refused"


class Unparsable(DocumentRefused):
    code = "parse_error"


def clip(text: str, limit: int = 1000) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out (answers may quote input)."""
    return text if len(text) <= limit else f"{text[:limit - 30]}... ({len(text) - limit + 30} more characters)"


def max_depth() -> int:
    return int(settings.API_MAX_DEPTH)


def _too_deep(limit: int) -> TooDeep:
    return TooDeep(f"The document is nested more than {limit} levels deep; flatten it.")


def json_depth(text: str) -> int:
    """How deep the arrays and objects of JSON text nest (strings ignored), without parsing it."""
    outside_strings = _JSON_STRING.sub("", text)
    steps = map(_JSON_STEP.__getitem__, _JSON_BRACKETS.findall(outside_strings))
    return max(accumulate(steps, initial=0))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_json(text: str | bytes, limit: int | None = None) -> Any:
    """``json.loads`` refusing nesting deeper than ``limit`` (default: the setting) before parsing."""
    limit = max_depth() if limit is None else limit
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unparsable(f"The document is not UTF-8 text ({exc.reason} at byte {exc.start}).")
    if json_depth(text) > limit:
        raise _too_deep(limit)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:  # unreachable after the depth check; kept so it can never be a 500
        raise _too_deep(limit)
    except ValueError as exc:
        raise Unparsable(f"The document is not valid JSON: {exc}.")


def _check_yaml_events(text: str, limit: int) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise YamlAliasRefused(f"YAML anchors and aliases (&name, *name) are not accepted (line {mark.line + 1},"
                                   f" column {mark.column + 1}); write each value out in full.")
        if isinstance(event, _OPENING):
            depth += 1
            if depth > limit:
                raise _too_deep(limit)
        elif isinstance(event, _CLOSING):
            depth -= 1


def loads_yaml(text: str, limit: int | None = None) -> Any:
    """One YAML document, safely: plain data only, no anchors or aliases, bounded nesting.

    The event stream is checked first (no node is built from a refused document), then the
    same text is loaded by the safe loader. Syntax errors raise ``yaml.YAMLError`` as usual.
    """
    limit = max_depth() if limit is None else limit
    _check_yaml_events(text, limit)
    try:
        return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader; aliases were refused above
    except RecursionError:
        raise _too_deep(limit)

