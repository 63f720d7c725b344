"""API shapes of pools, backends and routes.

Input is validated by ``balancer.validation`` (shared with bulk and import, so every path
gives the same messages); the DRF serializers here describe the bodies for the browsable
API and the OpenAPI schema. The ``*_payload`` functions shape records for responses.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from balancer.models import ALGORITHMS, BACKEND_STATES, Backend, Pool, Route


class HealthCheckSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["http", "tcp"], required=False)
    method = serializers.CharField(required=False)
    path = serializers.CharField(required=False)
    interval = serializers.CharField(required=False, help_text='"5s", "500ms" or seconds')
    timeout = serializers.CharField(required=False, help_text="shorter than interval")
    expected_status = serializers.JSONField(required=False, help_text="200 or [200, 204]")
    rise = serializers.IntegerField(required=False, min_value=1)
    fall = serializers.IntegerField(required=False, min_value=1)


class PoolSerializer(serializers.Serializer):
    name = serializers.CharField()
    algorithm = serializers.ChoiceField(choices=ALGORITHMS, default="round_robin")
    sticky_sessions = serializers.BooleanField(default=False)
    health_check = HealthCheckSerializer(required=False, allow_null=True)
    version = serializers.IntegerField(required=False, help_text="on PUT: the version you read (409 if stale)")


class BackendSerializer(serializers.Serializer):
    address = serializers.CharField(help_text='"host:port"')
    pool = serializers.CharField()
    weight = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    region = serializers.CharField(required=False, allow_null=True)
    enabled = serializers.BooleanField(default=True)
    state = serializers.ChoiceField(choices=BACKEND_STATES, default="active")
    health_check = HealthCheckSerializer(required=False, allow_null=True)
    version = serializers.IntegerField(required=False)


class RouteSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="api.example.com or *.example.com")
    path_prefix = serializers.CharField(default="/")
    pool = serializers.CharField()
    max_body_bytes = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    version = serializers.IntegerField(required=False)
    status = serializers.ChoiceField(choices=["active", "pending_verification"], read_only=True,
                                     help_text="pending_verification: stored but not served until the host is "
                                               "a verified domain of the tenant")
    status_reason = serializers.CharField(read_only=True, allow_null=True)


class BulkSerializer(serializers.Serializer):
    operations = serializers.JSONField(help_text='[{"op": "create|update|delete", "type": "pool|backend|route", '
                                                 '"id"?, "data"?, "version"?, "force"?}]')


# Declared through type() so that the field (and the schema) is "global", a Python keyword.
ConfigDocumentSerializer = type("ConfigDocumentSerializer", (serializers.Serializer,), {
    "global": serializers.JSONField(required=False),
    "pools": serializers.JSONField(required=False),
    "routes": serializers.JSONField(required=False),
})


class NoBodySerializer(serializers.Serializer):
    """For POSTs without a body (reload, rollback): the browsable API still needs a form."""


class BackupSerializer(serializers.Serializer):
    backup = serializers.JSONField(help_text="the document GET /api/backup/create returned")


def pool_payload(pool: Pool, backend_count: int | None = None, route_count: int | None = None) -> dict[str, Any]:
    data = pool.public_dict()
    if pool.warnings():
        data["warnings"] = pool.warnings()
    if backend_count is not None:
        data["backend_count"] = backend_count
    if route_count is not None:
        data["route_count"] = route_count
    return data


def backend_payload(backend: Backend, healthy: bool | None, health: dict | None = None,
                    detail: bool = False) -> dict[str, Any]:
    data = backend.public_dict()
    data["healthy"] = healthy
    if detail:
        data["health"] = health
    return data


def route_payload(route: Route, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A route; ``status`` ({status, status_reason}, from ``balancer.domains.route_status``) when known."""
    data = route.public_dict()
    if status is not None:
        data.update(status)
    return data


def record_payload(record: Any, health: dict[str, bool | None] | None = None) -> dict[str, Any]:
    if isinstance(record, Backend):
        return backend_payload(record, (health or {}).get(record.id))
    if isinstance(record, Pool):
        return pool_payload(record)
    return route_payload(record)


# --- answers (the OpenAPI schema's response bodies; the payload functions above build them) ---------------
class RecordOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    version = serializers.IntegerField()
    created_at = serializers.CharField()
    updated_at = serializers.CharField()


class PoolOutSerializer(RecordOutSerializer):
    name = serializers.CharField()
    algorithm = serializers.CharField()
    sticky_sessions = serializers.BooleanField()
    health_check = serializers.DictField(allow_null=True)
    backend_count = serializers.IntegerField(required=False, help_text="in lists and GET")
    route_count = serializers.IntegerField(required=False, help_text="in lists and GET")
    warnings = serializers.ListField(child=serializers.CharField(), required=False,
                                     help_text="only when the pool does not run as stored: a geo_proximity pool "
                                               "stored before it was refused runs round_robin")


class BackendOutSerializer(RecordOutSerializer):
    pool = serializers.CharField()
    address = serializers.CharField()
    weight = serializers.IntegerField()
    region = serializers.CharField(allow_null=True)
    enabled = serializers.BooleanField()
    state = serializers.CharField()
    health_check = serializers.DictField(allow_null=True)
    healthy = serializers.BooleanField(allow_null=True, help_text="null until the first health check")
    health = serializers.DictField(allow_null=True, required=False, help_text="GET /api/backends/<id> only")


class PoolDetailOutSerializer(PoolOutSerializer):
    backends = BackendOutSerializer(many=True)


class RouteOutSerializer(RecordOutSerializer):
    host = serializers.CharField()
    path_prefix = serializers.CharField()
    pool = serializers.CharField()
    max_body_bytes = serializers.IntegerField(allow_null=True)


class ReloadOutSerializer(serializers.Serializer):
    reloaded = serializers.BooleanField()
    routing_version = serializers.IntegerField()
    config_version = serializers.IntegerField()


class ConfigErrorOutSerializer(serializers.Serializer):
    path = serializers.CharField(help_text='where in the document, e.g. "pools[0].backends[1].weight"')
    message = serializers.CharField()


class ConfigValidateOutSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = ConfigErrorOutSerializer(many=True)
    ignored = serializers.ListField(child=serializers.CharField(), help_text="keys we do not use")
    diff = serializers.JSONField(required=False, help_text="only when valid: what applying it would change")
    summary = serializers.DictField(child=serializers.IntegerField(), required=False)


class ConfigImportOutSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    applied = serializers.BooleanField()
    config_version = serializers.IntegerField(allow_null=True)
    ignored = serializers.ListField(child=serializers.CharField())
    diff = serializers.JSONField()


class ConfigRollbackOutSerializer(ConfigImportOutSerializer):
    rolled_back_to = serializers.IntegerField()


class BulkItemOutSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    op = serializers.ChoiceField(choices=["create", "update", "delete"])
    type = serializers.ChoiceField(choices=["pool", "backend", "route"])
    status = serializers.IntegerField()
    id = serializers.CharField()
    object = serializers.DictField(required=False, help_text="creates and updates")
    removed = serializers.ListField(child=serializers.DictField(), required=False, help_text="deletes")


class BulkOutSerializer(serializers.Serializer):
    applied = serializers.IntegerField()
    config_version = serializers.IntegerField(allow_null=True)
    results = BulkItemOutSerializer(many=True)


class RemovedOutSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["pool", "backend", "route"])
    id = serializers.CharField()


class PoolDeletedOutSerializer(serializers.Serializer):
    deleted = serializers.CharField(help_text="the pool's name")
    removed = RemovedOutSerializer(many=True, help_text="the pool and, with ?force=true, its backends and routes")


# "global" is a keyword, so the field is declared through type(): the schema must say "global", not "global_".
ConfigOutSerializer = type("ConfigOutSerializer", (serializers.Serializer,), {
    "global": serializers.DictField(),
    "pools": serializers.ListField(child=serializers.DictField()),
    "routes": serializers.ListField(child=serializers.DictField()),
    "config_version": serializers.IntegerField(),
    "routing_version": serializers.IntegerField(),
})
