"""Repository base: get, list (cursor or page), create, update, delete.

A concrete repository names its record type and how keys are spelled; the
base enforces unique indexes and optimistic concurrency through AtomicWrite.
Lists come from a sorted-set index of ids (lexicographic), never from KEYS.
"""

from __future__ import annotations

import functools
import inspect
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import redis

from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import get_redis
from veloflux_site.storage.errors import Conflict, NotFound, StaleVersion
from veloflux_site.storage.records import Record, utcnow

R = TypeVar("R", bound=Record)
T = TypeVar("T")


@dataclass
class Page(Generic[R]):
    items: list[R]
    total: int


class Repository(Generic[R]):
    record_type: type[R]
    label: ClassVar[str] = "record"  # used in messages: "pool 'web' not found"

    def __init__(self, client: redis.Redis | None = None):
        self._client = client

    @property
    def redis(self) -> redis.Redis:
        return self._client or get_redis()

    # --- key layout (subclasses) -------------------------------------------
    def record_key(self, record_id: str) -> str:
        raise NotImplementedError

    def index_key(self) -> str:
        raise NotImplementedError

    def unique_keys(self, record: R) -> dict[str, str]:
        """Index key -> field name, for every value that must be unique."""
        return {}

    def index_member(self, record: R) -> str:
        return record.id

    # --- reads -------------------------------------------------------------
    def _read_key(self, record_id: str) -> str | None:
        """The record's key, or None for an id no record can have (spaces, braces...: from a URL or header)."""
        try:
            return self.record_key(record_id)
        except ValueError:
            return None

    def get(self, record_id: str) -> R:
        key = self._read_key(record_id)
        raw = self.redis.get(key) if key is not None else None
        if raw is None:
            raise NotFound(f"{self.label} {record_id!r} not found")
        return self.record_type.from_json(raw)

    def find(self, record_id: str) -> R | None:
        try:
            return self.get(record_id)
        except NotFound:
            return None

    def get_many(self, record_ids: Iterable[str]) -> list[R]:
        record_keys = [key for key in map(self._read_key, record_ids) if key is not None]
        if not record_keys:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in record_keys:
            pipe.get(key)
        return [self.record_type.from_json(raw) for raw in pipe.execute() if raw is not None]

    def count(self) -> int:
        return int(self.redis.zcard(self.index_key()))

    def ids(self) -> list[str]:
        return list(self.redis.zrange(self.index_key(), 0, -1))

    def all(self) -> list[R]:
        return self.get_many(self.ids())

    def list_page(self, page: int, limit: int) -> Page[R]:
        start = (page - 1) * limit
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.index_key(), start, start + limit - 1)
        pipe.zcard(self.index_key())
        ids, total = pipe.execute()
        return Page(items=self.get_many(ids), total=int(total))

    # --- staged writes -----------------------------------------------------
    def stage_create(self, batch: AtomicWrite, record: R) -> R:
        record.version = 1
        record.created_at = record.updated_at = utcnow()
        key = self.record_key(record.id)
        batch.require_absent(key, f"{self.label} {record.id!r} already exists", "id")
        for index_key, field_name in self.unique_keys(record).items():
            value = getattr(record, field_name)
            batch.require_absent(index_key, f"{self.label} with {field_name} {value!r} already exists", field_name)
            batch.set(index_key, record.id)
        batch.set(key, record.to_json())
        batch.zadd(self.index_key(), self.index_member(record))
        return record

    def stage_update(self, batch: AtomicWrite, old: R, new: R, expected_version: int | None = None) -> R:
        version = old.version if expected_version is None else expected_version
        key = self.record_key(old.id)
        batch.require_version(key, version, f"{self.label} {old.id!r} was changed by someone else "
                                            f"(you sent version {version}); reload it and try again")
        old_unique = self.unique_keys(old)
        new_unique = self.unique_keys(new)
        for index_key, field_name in new_unique.items():
            value = getattr(new, field_name)
            batch.require_free_or_owned(index_key, old.id,
                                        f"{self.label} with {field_name} {value!r} already exists", field_name)
            batch.set(index_key, old.id)
        for index_key in old_unique.keys() - new_unique.keys():
            batch.delete(index_key)
        new.id, new.created_at = old.id, old.created_at
        new.version = version + 1
        new.updated_at = utcnow()
        batch.set(key, new.to_json())
        return new

    def stage_delete(self, batch: AtomicWrite, record: R, expected_version: int | None = None) -> None:
        key = self.record_key(record.id)
        if expected_version is None:
            batch.require_present(key, f"{self.label} {record.id!r} not found")
        else:
            batch.require_version(key, expected_version, f"{self.label} {record.id!r} was changed by "
                                                         "someone else; reload it and try again")
        for index_key in self.unique_keys(record):
            batch.delete(index_key)
        batch.delete(key)
        batch.zrem(self.index_key(), self.index_member(record))

    # --- one-shot writes ---------------------------------------------------
    def create(self, record: R) -> R:
        batch = AtomicWrite()
        self.stage_create(batch, record)
        batch.execute(self.redis)
        return record

    def update(self, old: R, new: R, expected_version: int | None = None) -> R:
        batch = AtomicWrite()
        self.stage_update(batch, old, new, expected_version)
        batch.execute(self.redis)
        return new

    def delete(self, record: R, expected_version: int | None = None) -> None:
        batch = AtomicWrite()
        self.stage_delete(batch, record, expected_version)
        batch.execute(self.redis)


def retry_on_stale(attempts: int = 100, max_backoff: float = 0.02):
    """Re-run a read-modify-write when someone else won the race (no version was given).

    Each round of a contended record has exactly one winner, so N racing writers need up to N
    attempts; a short random backoff spreads them out. When the caller named the version it
    expects (an ``expected_version`` argument that is not None), a stale version is the answer
    and is never retried.
    """

    def decorator(func):
        signature = inspect.signature(func)
        checks_version = "expected_version" in signature.parameters

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if checks_version and signature.bind(*args, **kwargs).arguments.get("expected_version") is not None:
                return func(*args, **kwargs)
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except StaleVersion:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(random.uniform(0, min(max_backoff, 0.001 * 2 ** attempt)))
            return None

        return wrapper

    return decorator


def retry_on_race(attempt_once: Callable[[], T], is_race: Callable[[Conflict], bool], attempts: int = 60) -> T:
    """Run a read-stage-execute ``attempt_once`` again, from fresh reads, while it fails with a Conflict
    ``is_race`` calls a lost race (a guard another writer got past first); any other Conflict is the answer."""
    for attempt in range(attempts):
        try:
            return attempt_once()
        except Conflict as exc:
            if not is_race(exc) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
