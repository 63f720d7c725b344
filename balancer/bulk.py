"""POST /api/bulk: many creates, updates and deletes applied all-or-nothing in one atomic write."""

from __future__ import annotations

from typing import Any

from balancer.services import Committed, Stored, apply_change
from balancer.workspace import ItemError, Workspace
from tenants.audit import Actor

MAX_OPERATIONS = 1000
OPS = ("create", "update", "delete")
KINDS = ("pool", "backend", "route")


class BulkError(Exception):
    """At least one operation is invalid; ``items`` lists each failing one. Nothing was applied."""

    def __init__(self, items: list[dict[str, Any]], total: int):
        statuses = {item["status"] for item in items}
        self.status = statuses.pop() if len(statuses) == 1 else 400
        self.items = items
        super().__init__(f"{len(items)} of {total} operation(s) cannot be applied; nothing was changed. "
                         f"First: operations[{items[0]['index']}]: {items[0]['message']}")

    def fields(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for item in self.items:
            prefix = f"operations[{item['index']}]"
            for name, messages in (item["fields"] or {"non_field_errors": [item["message"]]}).items():
                key = prefix if name == "non_field_errors" else f"{prefix}.{name}"
                out.setdefault(key, []).extend(messages)
        return out


def _operations(body: Any) -> list[Any]:
    operations = body.get("operations") if isinstance(body, dict) else body
    if not isinstance(operations, list) or not operations:
        raise ItemError.invalid({"operations": ['must be a non-empty list of {"op", "type", "id"?, "data"?, '
                                                '"version"?} objects']})
    if len(operations) > MAX_OPERATIONS:
        raise ItemError.invalid({"operations": [f"at most {MAX_OPERATIONS} operations per request, "
                                                f"got {len(operations)}"]})
    return operations


def _apply_one(work: Workspace, operation: Any) -> tuple[str, str, Any, int]:
    """Returns (op, kind, object or removed list, HTTP-like status)."""
    if not isinstance(operation, dict):
        raise ItemError.invalid({"non_field_errors": ["each operation must be an object"]})
    op, kind = operation.get("op"), operation.get("type")
    errors: dict[str, list[str]] = {}
    if op not in OPS:
        errors["op"] = [f"must be one of {', '.join(OPS)}"]
    if kind not in KINDS:
        errors["type"] = [f"must be one of {', '.join(KINDS)}"]
    if op in ("update", "delete") and not isinstance(operation.get("id"), str):
        errors["id"] = [f"the id of the {kind or 'object'} to {op} is required (a pool's id is its name)"]
    data = operation.get("data", {})
    if op in ("create", "update") and not isinstance(data, dict):
        errors["data"] = ["must be an object with the fields to set"]
    if errors:
        raise ItemError.invalid(errors)
    version = operation.get("version")
    if op == "create":
        return op, kind, getattr(work, f"create_{kind}")(data), 201
    if op == "update":
        return op, kind, getattr(work, f"update_{kind}")(operation["id"], data, version), 200
    if kind == "pool":
        return op, kind, work.delete_pool(operation["id"], bool(operation.get("force")), version), 200
    return op, kind, getattr(work, f"delete_{kind}")(operation["id"], version), 200


def _apply_all(work: Workspace, operations: list[Any]) -> list[tuple[int, str, str, Any, int]]:
    applied = []
    failed: list[dict[str, Any]] = []
    for index, operation in enumerate(operations):
        try:
            op, kind, result, status = _apply_one(work, operation)
        except ItemError as exc:
            failed.append({"index": index, "status": exc.status, "code": exc.code, "message": exc.message,
                           "fields": exc.fields})
            continue
        applied.append((index, op, kind, result, status))
    if failed:
        raise BulkError(failed, len(operations))
    return applied


def apply_bulk(tenant_id: str, actor: Actor, body: Any, stored: Stored | None = None
               ) -> tuple[list[tuple[int, str, str, Any, int]], Committed | None]:
    """Apply every operation or none; returns (index, op, type, object or removed, status) per item."""
    operations = _operations(body)
    return apply_change(tenant_id, actor, "bulk", lambda work: _apply_all(work, operations), stored=stored)
