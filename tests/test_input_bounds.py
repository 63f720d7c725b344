"""Small requests cannot make large work: YAML aliases, deep nesting, big bodies, long error lists.

Before the fix a 458-byte YAML document of nested aliases sent to /api/config/validate (any
viewer may call it) made a 52 MB answer, and a JSON body nested 1,000 deep was a 500
(RecursionError) on every endpoint that takes a body.
"""

from __future__ import annotations

import json

import pytest

from tests.support.assertions import assert_error, assert_ok, redis_dump


def laughs(levels: int) -> str:
    """The "billion laughs": each line repeats the previous one nine times, by alias."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    lines.append(f"pools: [{{name: web, algorithm: *a{levels - 1}}}]")
    lines.append("routes: []")
    return "\n".join(lines) + "\n"


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_text(api, actor, path: str, text: str, content_type: str):
    return api.as_(actor).post(path, text, content_type=content_type, format=None)


# --- YAML aliases -----------------------------------------------------------------------------
def test_it_refuses_yaml_aliases_in_a_document_to_validate(api, viewer):
    document = laughs(6)  # 9**6 "lol"s once expanded; before the fix the answer quoted them all (3.7 MB)
    response = post_text(api, viewer, "/api/config/validate", document, "application/yaml")
    body = assert_ok(response)
    assert len(response.content) < 5_000, len(response.content)
    assert body["valid"] is False
    assert body["errors"][0]["path"] == "document"
    assert "anchors and aliases" in body["errors"][0]["message"]


def test_it_refuses_yaml_aliases_sent_as_json_content(api, viewer):
    response = api.as_(viewer).post("/api/config/validate", {"content": laughs(6)})
    assert len(response.content) < 5_000 and response.json()["valid"] is False


def test_it_refuses_yaml_aliases_on_import_and_changes_nothing(api, owner):
    before = redis_dump()
    response = post_text(api, owner, "/api/config/import", laughs(6), "application/yaml")
    error = assert_error(response, 400, "invalid_config")
    assert "anchors and aliases" in error["message"]
    assert len(response.content) < 5_000
    assert redis_dump() == before


def test_it_refuses_a_lone_yaml_anchor_too(api, viewer):
    document = "pools: &p []\nroutes: []\n"
    body = assert_ok(post_text(api, viewer, "/api/config/validate", document, "application/yaml"))
    assert body["valid"] is False and "anchors and aliases" in body["errors"][0]["message"]


def test_it_still_validates_an_exported_yaml_document(api, owner):
    assert_ok(api.as_(owner).post("/api/pools", {"name": "web"}), 201)
    exported = api.as_(owner).get("/api/config/export?format=yaml").content.decode()
    body = assert_ok(post_text(api, owner, "/api/config/validate", exported, "application/yaml"))
    assert body["valid"] is True, body


# --- nesting depth ----------------------------------------------------------------------------
BODY_PATHS = ["/api/pools", "/api/backends", "/api/routes", "/api/bulk", "/api/config/validate",
              "/api/config/import", "/api/config/import?dry_run=true", "/api/auth/api-keys", "/api/profile"]


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("path", BODY_PATHS)
def test_it_refuses_deeply_nested_json_bodies_with_a_400(api, owner, path, depth):
    before = redis_dump()
    method = "put" if path == "/api/profile" else "post"
    response = getattr(api.as_(owner), method)(path, nested_json(depth), content_type="application/json",
                                               format=None)
    error = assert_error(response, 400, "too_deeply_nested")
    assert "32 levels" in error["message"]
    assert redis_dump() == before


def test_it_refuses_deep_json_in_an_object_too(api, owner):
    body = '{"name": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}"
    response = api.as_(owner).post("/api/pools", body, content_type="application/json", format=None)
    assert_error(response, 400, "too_deeply_nested")


def test_it_accepts_brackets_inside_json_strings(api, owner):
    body = json.dumps({"name": "web", "algorithm": "[" * 100})
    response = api.as_(owner).post("/api/pools", body, content_type="application/json", format=None)
    assert_error(response, 400, "validation_error")  # a bad algorithm, not a nesting problem


@pytest.mark.parametrize("document", ["[" * 1_000 + "]" * 1_000, "a:\n" + "".join(
    "  " * level + "- \n" for level in range(1, 60)), "x: " + "{a: " * 500 + "1" + "}" * 500])
def test_it_refuses_deeply_nested_yaml(api, owner, document):
    body = assert_ok(post_text(api, owner, "/api/config/validate", document, "application/yaml"))
    assert body["valid"] is False and "levels deep" in body["errors"][0]["message"], body
    before = redis_dump()
    assert_error(post_text(api, owner, "/api/config/import", document, "application/yaml"), 400, "invalid_config")
    assert redis_dump() == before


def test_it_refuses_deep_json_inside_a_content_field(api, owner):
    response = api.as_(owner).post("/api/config/validate", {"content": "{" + '"a": {' * 1_000 + "}" * 1_001})
    assert response.json()["valid"] is False and "levels deep" in response.json()["errors"][0]["message"]


def test_it_refuses_a_deep_backup_with_a_400(api, platform_admin):
    before = redis_dump()
    response = api.as_(platform_admin).post("/api/backup/restore", nested_json(5_000),
                                            content_type="application/json", format=None)
    assert_error(response, 400, "invalid_backup")
    assert redis_dump() == before


def test_it_refuses_nan_in_json(api, owner):
    response = api.as_(owner).post("/api/pools", '{"name": NaN}', content_type="application/json", format=None)
    assert_error(response, 400, "parse_error")


# --- body size ----------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
def test_it_answers_an_oversized_body_with_a_413_in_the_error_shape(api, owner, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    text = json.dumps({"pools": [{"name": f"p{i}"} for i in range(1_000)], "routes": []})
    paths = ("/api/config/import", "/api/config/validate") + (("/api/pools",) if content_type.endswith("json") else ())
    for path in paths:
        response = post_text(api, owner, path, text, content_type)
        error = assert_error(response, 413, "payload_too_large")
        assert "10000 bytes" in error["message"]


# --- answer size ----------------------------------------------------------------------------
def test_it_bounds_the_error_list_of_a_document_with_many_mistakes(api, viewer):
    document = {"pools": [{"name": f"p{i}", "algorithm": "nope"} for i in range(5_000)], "routes": []}
    response = api.as_(viewer).post("/api/config/validate", document)
    body = assert_ok(response)
    assert body["valid"] is False
    assert len(body["errors"]) == 101
    assert body["errors"][-1]["message"].startswith("... and 4900 more errors")
    assert len(response.content) < 40_000


def test_it_bounds_the_same_list_on_import(api, owner):
    document = {"pools": [{"name": f"p{i}", "algorithm": "nope"} for i in range(5_000)], "routes": []}
    response = api.as_(owner).post("/api/config/import", document)
    error = assert_error(response, 400, "invalid_config")
    assert len(error["errors"]) == 101 and len(error["fields"]) <= 101
    assert len(response.content) < 60_000


def test_it_clips_the_per_item_messages_of_a_bulk_refusal(api, owner):
    operations = [{"op": "create", "type": "pool", "data": {"name": f"p{i}", "algorithm": "x" * 200_000}}
                  for i in range(5)]
    response = api.as_(owner).post("/api/bulk", {"operations": operations})
    error = assert_error(response, 400)
    assert len(error["items"]) == 5
    assert len(response.content) < 40_000, len(response.content)


def test_it_clips_a_message_that_quotes_a_huge_value(api, owner):
    response = api.as_(owner).post("/api/pools", {"name": "web", "algorithm": "x" * 1_000_000})
    error = assert_error(response, 400, "validation_error")
    assert "more characters" in error["message"]
    assert len(response.content) < 5_000


# --- body size at the server's edge (a real uvicorn) -------------------------------------------------
def _send_and_read_status(asgi_server, head: bytes, body: bytes) -> bytes:
    """Sends a request head and part of a body, never the rest: the answer must come anyway."""
    import socket

    with socket.create_connection(("127.0.0.1", asgi_server.port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = sock.recv(65536)
        # The head and the body may come in separate segments: read on until the declared length is there.
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _content_length(answer):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
        return answer


def _content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_it_refuses_a_declared_oversized_body_without_waiting_for_it(asgi_server, owner):
    head = (f"POST /api/pools HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {owner.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n").encode()
    answer = _send_and_read_status(asgi_server, head, b"[" * 1000)  # 1 GB announced, 1 kB sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "payload_too_large"


def test_it_refuses_a_chunked_body_as_soon_as_it_passes_the_limit(asgi_server, owner):
    from veloflux_site.api.body_limit import body_limit

    head = (f"POST /api/pools HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {owner.token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"x" * 65536
    count = body_limit("/api/pools") // len(chunk) + 1
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * count  # past the limit, and no final chunk
    answer = _send_and_read_status(asgi_server, head, body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_it_lets_a_backup_be_larger_than_other_bodies(asgi_server, platform_admin):
    import httpx

    from veloflux_site.api.body_limit import body_limit

    size = body_limit("/api/pools") + 1_000
    assert body_limit("/api/backup/restore") > size
    response = httpx.post(f"{asgi_server.http_url}/api/backup/restore", content=b" " * size + b"[]", timeout=30,
                          headers={"Authorization": f"Bearer {platform_admin.token}",
                                   "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_backup"


# --- WebSocket frames ---------------------------------------------------------------------------
def test_it_answers_a_deeply_nested_hub_frame_with_an_error_and_keeps_the_connection(asgi_server, owner):
    from tests.support.aio import run
    from tests.support.hub_client import HubClient

    async def scenario():
        client = await HubClient.open(asgi_server.ws_url, token=owner.token)
        await client.ws.send("[" * 30_000 + "]" * 30_000)  # under the 64 KiB frame limit
        error = await client.next_push("error")
        still_there = await client.call("ping")
        await client.close()
        return error, still_there

    error, still_there = run(scenario())
    assert error["code"] == 100 and still_there == {}
