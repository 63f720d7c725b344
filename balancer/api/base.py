"""The base of the balancer's API views: error mapping, request bodies, Idempotency-Key replay."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from rest_framework import status
from rest_framework.response import Response

from balancer import backup, bulk, config_io, services
from balancer.workspace import ItemError
from tenants.permissions import ViewerReadsMemberWrites
from veloflux_site.api.errors import ApiError
from veloflux_site.api.views import ApiView
from veloflux_site.storage.errors import Conflict


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


class BalancerView(ApiView):
    permission_classes = [ViewerReadsMemberWrites]

    def handle_exception(self, exc):
        if isinstance(exc, ItemError):
            extra = {"current_version": exc.current_version} if exc.current_version is not None else None
            exc = ApiError(exc.status, exc.code, exc.message, exc.fields or None, extra=extra)
        elif isinstance(exc, bulk.BulkError):
            exc = ApiError(exc.status, "bulk_rejected", str(exc), exc.fields(), extra={"items": exc.items})
        elif isinstance(exc, config_io.DocumentError):
            exc = ApiError(400, "invalid_config", str(exc), exc.errors,
                           extra={"errors": [{"path": p, "message": m} for p, ms in exc.errors.items() for m in ms],
                                  "ignored": exc.ignored})
        elif isinstance(exc, backup.BackupError):
            exc = ApiError(400, "invalid_backup", f"{exc} Nothing was changed.")
        return super().handle_exception(exc)

    def body(self) -> Any:
        data = self.request.data
        if hasattr(data, "dict") and not isinstance(data, dict):
            data = data.dict()
        return data

    def object_body(self) -> dict:
        data = self.body()
        if not isinstance(data, dict):
            raise ApiError(400, "validation_error", "The request body must be a JSON object.",
                           {"non_field_errors": ["expected a JSON object"]})
        return data

    def body_version(self, data: dict) -> Any:
        version = data.get("version", self.request.query_params.get("version"))
        if isinstance(version, str) and version.isdigit():
            return int(version)
        return version

    # --- Idempotency-Key ----------------------------------------------------------
    def idempotent(self, payload: Any, run: Callable[[services.Stored | None], Response],
                   build: Callable[[Any, services.Committed], tuple[int, Any]]) -> Response:
        """Replays the stored answer of a request already applied with this Idempotency-Key (24 h)."""
        raw_key = self.request.headers.get("Idempotency-Key")
        if not raw_key:
            return run(None)
        if len(raw_key) > 255:
            raise ApiError(400, "validation_error", "Idempotency-Key must be at most 255 characters.")
        tenant_id = self.tenant_id()
        key_hash = services.idempotency_key_hash(f"{self.request.path}\n{raw_key}")
        fingerprint = hashlib.sha256(json.dumps([self.request.get_full_path(), payload], sort_keys=True,
                                                default=str).encode()).hexdigest()
        stored = services.Stored(key_hash, fingerprint, build)
        answer = services.stored_answer(tenant_id, key_hash)
        if answer is None:
            try:
                return run(stored)
            except Conflict as exc:
                if not services.is_idempotency_race(exc):
                    raise
                answer = services.stored_answer(tenant_id, key_hash)
                if answer is None:
                    raise
        if answer["fingerprint"] != fingerprint:
            raise ApiError(422, "idempotency_key_reused", "This Idempotency-Key was already used for a different "
                           "request in the last 24 hours; use a new key for a new request.")
        return Response(answer["body"], status=answer["status"], headers={"Idempotent-Replayed": "true"})


    def create(self, kind: str, present: Callable[[Any], dict]) -> Response:
        """POST of one object; with an Idempotency-Key a retried request gets the first answer again."""
        data = self.object_body()

        def build(created: Any, committed: services.Committed) -> tuple[int, dict]:
            return status.HTTP_201_CREATED, present(created)

        def run(stored: services.Stored | None) -> Response:
            created = services.create_object(self.tenant_id(), self.actor(), kind, data, stored)
            return Response(present(created), status=status.HTTP_201_CREATED)

        return self.idempotent(data, run, build)


