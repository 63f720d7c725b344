"""?page=&limit= pagination with the VeloFlux list envelope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from veloflux_site.api.errors import ApiError

MAX_PAGE = 10_000_000


def _positive_int(request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "validation_error", f"{name} must be a whole number, got {raw!r}.",
                       {name: ["must be a whole number"]})
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum else "at least 1"
        raise ApiError(400, "validation_error", f"{name} must be {bound}, got {value}.", {name: [f"must be {bound}"]})
    return value


def page_params(request) -> tuple[int, int]:
    # Bounded so that (page - 1) * limit stays a valid Redis index (ZRANGE takes 64-bit integers).
    page = _positive_int(request, "page", 1, MAX_PAGE)
    limit = _positive_int(request, "limit", settings.API_PAGE_SIZE, settings.API_MAX_PAGE_SIZE)
    return page, limit


def envelope(items: Sequence[Any], total: int, page: int, limit: int) -> dict:
    return {
        "items": list(items),
        "total_count": total,
        "page": page,
        "page_size": limit,
        "has_more": page * limit < total,
    }


def paginate_list(request, items: Sequence[Any]) -> dict:
    """Paginate an in-memory list (already filtered) with the standard envelope."""
    page, limit = page_params(request)
    start = (page - 1) * limit
    return envelope(items[start:start + limit], len(items), page, limit)
