"""The Redis storage layer: records, the repository base, AtomicWrite, counters, the connection."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from veloflux_site.storage import keys
from veloflux_site.storage.atomic import AtomicWrite
from veloflux_site.storage.connection import build_client, get_redis, persistence_status
from veloflux_site.storage.counters import incr_with_ttl
from veloflux_site.storage.errors import Conflict, LimitExceeded, NotFound, StaleVersion
from veloflux_site.storage.records import Record
from veloflux_site.storage.repository import Repository, retry_on_stale


@dataclass(kw_only=True)
class Widget(Record):
    name: str
    colour: str = "red"


class WidgetStore(Repository[Widget]):
    """A minimal concrete repository, to exercise the base exactly as the apps use it."""

    record_type = Widget
    label = "widget"

    def record_key(self, record_id: str) -> str:
        return keys.platform("test", "widget", record_id)

    def index_key(self) -> str:
        return keys.platform("test", "widgets")

    def unique_keys(self, record: Widget) -> dict[str, str]:
        return {keys.platform("test", "widget", "name", record.name): "name"}


@pytest.fixture
def store() -> WidgetStore:
    return WidgetStore()


@pytest.fixture
def commands():
    """Counts of the Redis commands a block sends (INFO commandstats)."""
    client = get_redis()
    client.config_resetstat()

    def used() -> set[str]:
        return {name.removeprefix("cmdstat_") for name in client.info("commandstats")}

    return used


def test_it_creates_and_reads_a_record_as_json(store):
    widget = store.create(Widget(name="gear"))
    assert widget.version == 1 and widget.created_at.endswith("Z")
    raw = get_redis().get(store.record_key(widget.id))
    assert json.loads(raw)["name"] == "gear"  # JSON, never pickle
    assert store.get(widget.id) == widget


def test_it_raises_not_found_for_a_missing_record(store):
    with pytest.raises(NotFound, match="widget 'nope' not found"):
        store.get("nope")
    assert store.find("nope") is None


def test_it_enforces_unique_indexes(store):
    store.create(Widget(name="gear"))
    with pytest.raises(Conflict) as caught:
        store.create(Widget(name="gear"))
    assert caught.value.field == "name"
    assert store.count() == 1


def test_it_bumps_the_version_on_update_and_refuses_a_stale_one(store):
    old = store.create(Widget(name="gear"))
    new = store.update(old, Widget(name="gear", colour="blue"))
    assert new.version == 2 and new.id == old.id and new.created_at == old.created_at
    with pytest.raises(StaleVersion) as caught:
        store.update(old, Widget(name="gear", colour="green"))  # still holds version 1
    assert caught.value.current_version == 2
    assert store.get(old.id).colour == "blue"
    with pytest.raises(StaleVersion):
        store.update(store.get(old.id), Widget(name="gear"), expected_version=1)


def test_it_moves_a_unique_index_when_the_value_changes(store):
    gear = store.create(Widget(name="gear"))
    store.create(Widget(name="cog"))
    with pytest.raises(Conflict):
        store.update(gear, Widget(name="cog"))
    renamed = store.update(gear, Widget(name="sprocket"))
    assert renamed.name == "sprocket"
    store.create(Widget(name="gear"))  # the old name is free again


def test_it_deletes_a_record_with_its_indexes(store):
    gear = store.create(Widget(name="gear"))
    store.delete(gear)
    assert store.find(gear.id) is None and store.count() == 0
    assert not get_redis().exists(keys.platform("test", "widget", "name", "gear"))
    with pytest.raises(NotFound):
        store.delete(gear)


def test_it_refuses_a_stale_delete(store):
    gear = store.create(Widget(name="gear"))
    store.update(gear, Widget(name="gear", colour="blue"))
    with pytest.raises(StaleVersion):
        store.delete(gear, expected_version=1)
    assert store.find(gear.id) is not None


def test_it_pages_without_keys(store, commands):
    created = sorted(store.create(Widget(name=f"w{i}")).id for i in range(7))
    page = store.list_page(2, 3)
    assert [w.id for w in page.items] == created[3:6] and page.total == 7
    assert [w.id for w in store.all()] == created
    assert "keys" not in commands() and "scan" not in commands()


def test_it_writes_all_or_nothing(store):
    client = get_redis()
    store.create(Widget(name="taken"))
    batch = AtomicWrite()
    store.stage_create(batch, Widget(name="fresh"))
    batch.set(keys.platform("test", "side"), "effect")
    store.stage_create(batch, Widget(name="taken"))  # this check fails...
    with pytest.raises(Conflict):
        batch.execute(client)
    # ...so none of the batch's writes happened.
    assert store.count() == 1 and not client.exists(keys.platform("test", "side"))
    assert not client.exists(keys.platform("test", "widget", "name", "fresh"))


def test_it_refuses_one_batch_claiming_a_unique_value_twice(store):
    batch = AtomicWrite()
    store.stage_create(batch, Widget(name="twin"))
    with pytest.raises(Conflict):
        store.stage_create(batch, Widget(name="twin"))


def test_it_checks_a_cardinality_limit_atomically():
    client = get_redis()
    index = keys.platform("test", "members")
    client.zadd(index, {"a": 0, "b": 0})
    batch = AtomicWrite()
    batch.require_max_card(index, 1, 2, "Your plan allows 2.", "max_members")
    batch.zadd(index, "c")
    with pytest.raises(LimitExceeded) as caught:
        batch.execute(client)
    assert (caught.value.limit, caught.value.maximum) == ("max_members", 2)
    assert client.zcard(index) == 2


def test_it_runs_every_write_kind_in_one_batch():
    client = get_redis()
    batch = AtomicWrite()
    batch.set(keys.platform("test", "s"), "v", ttl_ms=60_000)
    batch.sadd(keys.platform("test", "set"), "m")
    batch.hset(keys.platform("test", "h"), "f", "v")
    position = batch.incr(keys.platform("test", "n"), 5)
    batch.xadd(keys.platform("test", "stream"), {"a": "1"}, maxlen=100)
    batch.publish(keys.platform("test", "chan"), {"x": 1})
    results = batch.execute(client)
    assert int(results[position]) == 5
    assert 0 < client.pttl(keys.platform("test", "s")) <= 60_000
    assert client.smembers(keys.platform("test", "set")) == {"m"}
    assert client.xlen(keys.platform("test", "stream")) == 1
    assert AtomicWrite().execute(client) == []


def test_it_survives_a_script_flush():
    client = get_redis()
    AtomicWrite().execute(client)
    batch = AtomicWrite()
    batch.set(keys.platform("test", "a"), "1")
    batch.execute(client)
    client.script_flush()
    batch = AtomicWrite()
    batch.set(keys.platform("test", "b"), "2")
    batch.execute(client)
    assert client.get(keys.platform("test", "b")) == "2"


def test_it_retries_a_lost_race_but_not_a_callers_stale_version(store):
    gear = store.create(Widget(name="gear"))
    calls = []

    @retry_on_stale()
    def recolour(colour: str, expected_version: int | None = None) -> Widget:
        calls.append(colour)
        current = store.get(gear.id)
        if len(calls) == 1:  # someone else wins the first round
            store.update(current, Widget(name="gear", colour="other"))
        return store.update(current, Widget(name="gear", colour=colour), expected_version)

    assert recolour("blue").colour == "blue" and len(calls) == 2
    calls.clear()
    with pytest.raises(StaleVersion):
        recolour("green", expected_version=1)
    assert len(calls) == 1


def test_it_counts_with_a_ttl():
    key = keys.platform("test", "counter")
    assert incr_with_ttl(get_redis(), key, 30)[0] == 1
    count, ttl = incr_with_ttl(get_redis(), key, 30)
    assert count == 2 and 0 < ttl <= 30


def test_it_reports_persistence(redis_server):
    assert persistence_status() == {"aof": False, "rdb": False, "durable": False}


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1:26379", "redis+sentinel://h1:1,h2:2"])
def test_it_refuses_a_sentinel_url_without_a_service(url):
    with pytest.raises(ValueError, match="must name the service"):
        build_client(url)


def test_it_builds_a_sentinel_client_lazily():
    client = build_client("redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster/3")
    assert client.connection_pool.connection_kwargs["db"] == 3
