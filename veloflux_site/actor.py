"""Who did it: the actor every write and its audit entry name. A platform concept (every app writes
on someone's behalf), so it lives below the apps; tenants.audit re-exports it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Actor:
    id: str
    label: str
    ip: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls("system", "system")
