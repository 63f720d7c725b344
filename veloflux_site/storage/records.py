"""Typed records stored as JSON (never pickle), each with a ``version``."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Self


def utcnow() -> str:
    """RFC 3339 UTC with millisecond precision, e.g. 2026-11-22T13:27:07.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str = "") -> str:
    """A short random id; 16 hex chars = 64 bits, plenty for per-platform uniqueness."""
    return f"{prefix}{secrets.token_hex(8)}"


@dataclass(kw_only=True)
class Record:
    id: str = field(default_factory=new_id)
    version: int = 0
    created_at: str = field(default_factory=utcnow)
    updated_at: str = field(default_factory=utcnow)

    # Fields never returned by an API or written to the audit log.
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, raw: str) -> Self:
        return cls.from_dict(json.loads(raw))

    def public_dict(self) -> dict[str, Any]:
        data = self.to_dict()
        for name in self.SECRET_FIELDS:
            data.pop(name, None)
        return data
