"""Reproducers of what the isolation matrix, schemathesis and probes around them found (each failed before
its fix)."""

from __future__ import annotations

from tests.support.assertions import assert_error, redis_dump


def test_it_answers_options_on_the_docs_page_without_a_500(api):
    # The Swagger page's HTML renderer had no template for OPTIONS' metadata: TemplateDoesNotExist, a 500.
    response = api.request("OPTIONS", "/api/docs/")
    assert response.status_code == 405, (response.status_code, response.content[:200])
    assert api.get("/api/docs/").status_code == 200


def test_it_refuses_stream_controls_below_admin_before_reading_the_body(api, member):
    # The role check ran after validation: a member sending nothing got 400 (and learned the body's shape).
    for path in ("/api/ws/control", "/api/ws/force-update"):
        assert_error(api.as_(member).post(path, {}), 403, "permission_denied")


def test_it_answers_a_history_offset_beyond_any_stream_id_with_a_400(api, owner):
    # since_offset + 1 past 2**64 - 1 made Redis refuse the stream id: a 500 (ResponseError).
    before = redis_dump()
    for offset in ("18446744073709551615", "99999999999999999999999"):
        response = api.as_(owner).get("/api/realtime/history",
                                      {"channel": f"tenant:{owner.tenant_id}:x", "since_offset": offset})
        error = assert_error(response, 400, "validation_error")
        assert "since_offset" in error["fields"], error
    assert redis_dump() == before
