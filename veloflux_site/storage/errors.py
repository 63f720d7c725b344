"""Storage errors. The API layer maps each to one HTTP status and error code."""

from __future__ import annotations

from redis import exceptions as redis_exceptions


class StoreError(Exception):
    code = "store_error"


class NotFound(StoreError):
    code = "not_found"


class Conflict(StoreError):
    """A uniqueness rule or a precondition of the write did not hold."""

    code = "conflict"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class StaleVersion(Conflict):
    code = "version_conflict"

    def __init__(self, message: str, current_version: int | None = None):
        super().__init__(message, field="version")
        self.current_version = current_version


class LimitExceeded(StoreError):
    code = "limit_exceeded"

    def __init__(self, message: str, limit: str, maximum: int):
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum


class InvalidKeyPart(StoreError, ValueError):
    """Text that cannot be part of a Redis key (empty, with whitespace or braces): a caller's bad input.

    The API validates identifiers before they reach the key builder; this is the safety net
    (a 400, never a 500) for any that slips through.
    """

    code = "invalid_identifier"

    def __init__(self, part: object):
        shown = repr(part) if len(repr(part)) <= 60 else repr(part)[:57] + "..."
        super().__init__(f"{shown} cannot be used as an identifier: it must be non-empty, "
                         "without spaces or braces.")
        self.part = part


class StoreUnavailable(StoreError):
    code = "store_unavailable"


# What redis-py raises when the server cannot be reached or cannot serve yet
# (Sentinel's MasterNotFoundError is a ConnectionError).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_exceptions.ConnectionError,
    redis_exceptions.TimeoutError,
    redis_exceptions.BusyLoadingError,
    redis_exceptions.ClusterDownError,
    redis_exceptions.MasterDownError,
    StoreUnavailable,
)
