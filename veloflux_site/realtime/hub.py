"""The hub's state in Redis: publications with offsets and an epoch, bounded
history, idempotent publish, presence.

Every publication goes through one Lua call that (1) answers a repeated
idempotency key with the first result, (2) gives the message the channel's next
offset, (3) appends it to the channel's bounded history stream under the
stream id ``<offset>-1``, and (4) publishes it on Redis pub/sub. A client that
reconnects with ``(epoch, offset)`` gets exactly the entries after ``offset``
from the stream, or is told recovery failed (epoch changed or history trimmed).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import redis

from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

HISTORY_SIZE = 1000
HISTORY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_TTL_SECONDS = 300
PRESENCE_TTL_SECONDS = 60

PUBLISH_SCRIPT = r"""
if ARGV[4] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {'dup', seen} end
end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 'offset', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], offset .. '-1', 'd', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local result = cjson.encode({offset = offset, epoch = epoch})
local envelope = '{"channel":' .. cjson.encode(ARGV[6]) .. ',"offset":' .. offset .. ',"epoch":"' .. epoch ..
  '","data":' .. ARGV[1] .. '}'
redis.call('PUBLISH', KEYS[4], envelope)
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], result, 'EX', ARGV[7]) end
return {'ok', result}
"""


@dataclass
class Publication:
    channel: str
    offset: int
    epoch: str
    duplicate: bool = False


def publish(channel: str, data, idempotency_key: str | None = None,
            client: redis.Redis | None = None) -> Publication:
    client = client or get_redis()
    payload = json.dumps(data, separators=(",", ":"))
    # Without a key the script never reads KEYS[3]; it is passed only to keep the key list fixed.
    idem = keys.hub_channel(channel, f"idem:{idempotency_key or '-'}")
    status, raw = client.eval(
        PUBLISH_SCRIPT, 4,
        keys.hub_channel(channel, "stream"), keys.hub_channel(channel, "meta"), idem, keys.hub_pubsub(channel),
        payload, HISTORY_SIZE, HISTORY_TTL_SECONDS, idempotency_key or "", secrets.token_hex(4), channel,
        IDEMPOTENCY_TTL_SECONDS,
    )
    result = json.loads(raw)
    return Publication(channel, int(result["offset"]), result["epoch"], duplicate=status == "dup")


def stream_position(channel: str, client: redis.Redis | None = None) -> tuple[int, str]:
    """(last offset, epoch); a channel nobody published to yet gets its epoch now."""
    client = client or get_redis()
    meta_key = keys.hub_channel(channel, "meta")
    pipe = client.pipeline(transaction=True)
    pipe.hsetnx(meta_key, "epoch", secrets.token_hex(4))
    pipe.expire(meta_key, HISTORY_TTL_SECONDS)
    pipe.hgetall(meta_key)
    meta = pipe.execute()[-1]
    return int(meta.get("offset", 0)), meta["epoch"]


def history(channel: str, since_offset: int | None = None, limit: int = 100,
            client: redis.Redis | None = None) -> list[dict]:
    """Publications after ``since_offset`` (oldest first), or the latest ``limit``."""
    client = client or get_redis()
    stream = keys.hub_channel(channel, "stream")
    if since_offset is None:
        entries = list(reversed(client.xrevrange(stream, count=limit)))
    else:
        entries = client.xrange(stream, min=f"{since_offset + 1}-0", count=limit)
    return [{"offset": int(stream_id.split("-", 1)[0]), "data": json.loads(fields["d"])}
            for stream_id, fields in entries]


def history_page(channel: str, since_offset: int | None, limit: int, reverse: bool,
                 client: redis.Redis | None = None) -> list[dict]:
    """Centrifugo's history: after ``since_offset`` oldest first, or (``reverse``) before it newest
    first; without ``since_offset`` the oldest ``limit`` (or, reversed, the newest)."""
    client = client or get_redis()
    stream = keys.hub_channel(channel, "stream")
    if not reverse:
        entries = client.xrange(stream, min="-" if since_offset is None else f"{since_offset + 1}-0", count=limit)
    elif since_offset is None:
        entries = client.xrevrange(stream, count=limit)
    elif since_offset <= 1:
        entries = []
    else:
        entries = client.xrevrange(stream, max=f"{since_offset - 1}-1", count=limit)
    return [{"offset": int(stream_id.split("-", 1)[0]), "data": json.loads(fields["d"])}
            for stream_id, fields in entries]


@dataclass
class Recovery:
    recovered: bool
    publications: list[dict]
    offset: int
    epoch: str


def recover(channel: str, offset: int, epoch: str, client: redis.Redis | None = None) -> Recovery:
    """What a client that last saw ``(epoch, offset)`` missed — all of it, or ``recovered=False``."""
    client = client or get_redis()
    current_offset, current_epoch = stream_position(channel, client)
    if epoch != current_epoch or offset > current_offset:
        return Recovery(False, [], current_offset, current_epoch)
    missed = current_offset - offset
    if missed == 0:
        return Recovery(True, [], current_offset, current_epoch)
    publications = history(channel, since_offset=offset, limit=min(missed, HISTORY_SIZE * 2), client=client)
    complete = bool(publications) and publications[0]["offset"] == offset + 1 and len(publications) == missed
    return Recovery(complete, publications if complete else [], current_offset, current_epoch)


# --- presence ----------------------------------------------------------------
def _presence_notice(kind: str, info: dict) -> str:
    """Join/leave notices travel live on their own pub/sub channel (never kept in history)."""
    return json.dumps({kind: info}, separators=(",", ":"))


def presence_join(channel: str, client_id: str, info: dict, client: redis.Redis | None = None) -> None:
    """Record a client's presence and announce the join, in one transaction."""
    client = client or get_redis()
    now = time.time()
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.hub_channel(channel, "presence"), client_id, json.dumps(info, separators=(",", ":")))
    pipe.zadd(keys.hub_channel(channel, "presence:exp"), {client_id: now + PRESENCE_TTL_SECONDS})
    pipe.publish(keys.hub_presence_pubsub(channel), _presence_notice("join", info))
    pipe.execute()


def presence_refresh(clients_by_channel: dict[str, list[str]], client: redis.Redis | None = None) -> None:
    """Extend the presence of many clients: one ZADD XX per channel (the info itself is unchanged).

    XX: a client whose entry was already dropped as stale stays dropped until it joins again.
    """
    client = client or get_redis()
    expires = time.time() + PRESENCE_TTL_SECONDS
    pipe = client.pipeline(transaction=False)
    for channel, client_ids in clients_by_channel.items():
        pipe.zadd(keys.hub_channel(channel, "presence:exp"), dict.fromkeys(client_ids, expires), xx=True)
    pipe.execute()


def presence_leave(channel: str, client_id: str, info: dict, client: redis.Redis | None = None) -> None:
    """Drop a client's presence and announce the leave, in one transaction."""
    client = client or get_redis()
    pipe = client.pipeline(transaction=True)
    pipe.hdel(keys.hub_channel(channel, "presence"), client_id)
    pipe.zrem(keys.hub_channel(channel, "presence:exp"), client_id)
    pipe.publish(keys.hub_presence_pubsub(channel), _presence_notice("leave", info))
    pipe.execute()


_PRESENCE_SCRIPT = r"""
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(stale) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return redis.call('HGETALL', KEYS[1])
"""


def presence(channel: str, client: redis.Redis | None = None) -> dict[str, dict]:
    """Live clients of a channel (entries whose connection stopped refreshing are dropped)."""
    client = client or get_redis()
    flat = client.eval(_PRESENCE_SCRIPT, 2, keys.hub_channel(channel, "presence"),
                       keys.hub_channel(channel, "presence:exp"), time.time())
    return {flat[i]: json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}


def presence_stats(channel: str, client: redis.Redis | None = None) -> dict:
    members = presence(channel, client)
    return {"num_clients": len(members), "num_users": len({m.get("user") for m in members.values()})}
