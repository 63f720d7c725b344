"""The API's JSON parser: DRF's, with the nesting bound of ``veloflux_site.documents``.

DRF reads the body through ``request.body``, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` already
bounds its size (413); this adds the depth bound, checked before any object is built.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

from veloflux_site.documents import Unparsable, loads_json


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}: {exc}")
        try:
            return loads_json(text)
        except Unparsable as exc:
            raise ParseError(f"JSON parse error - {exc}")
