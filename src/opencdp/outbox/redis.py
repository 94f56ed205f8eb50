"""The shared durable outbox: Redis Streams, for apps that enqueue and workers that deliver.

Layout (``P`` is the key prefix, ``opencdp`` by default, in a hash tag so every key lives in
one cluster slot and the Lua scripts may touch them together):

- ``{P}:stream`` holds every message once (``XADD``; field ``m`` is the serialised message,
  ``d`` the destination bits the entry is for, ``a``/``e`` the attempt and last error of a
  retried entry). Each destination reads it through its own consumer group, so one entry
  can be acknowledged by OpenCDP's group and still pending in Customer.io's. A group skips
  (acknowledges at once) entries that are not for its destination.
- A lease is the consumer group's pending-entries list: ``XREADGROUP`` hands out new
  entries, and ``XAUTOCLAIM`` takes over entries idle for longer than ``lease_seconds`` --
  those of a worker that died -- with the same attempt.
- ``retry`` acknowledges the entry and parks it in ``{P}:delayed:<destination>``, a sorted
  set scored by its not-before time; a lease first moves due members back into the stream
  as entries for that destination only. ``dead`` acknowledges and appends to ``{P}:dead``.
- ``{P}:counts`` keeps per-destination counters (outstanding, delivered, dead) updated in
  the same scripts as the state changes, so ``stats`` is exact and costs O(1).
  ``{P}:meta`` records the lease time the lanes use, so an idle worker knows when a dead
  one's entries become claimable.
- The stream is trimmed (``XTRIM MINID``) below the oldest entry any group still needs.
- An entry's id is the server time it was added; a retried entry carries its first one in
  ``t``, so ``Leased.enqueued_at`` survives retries.
- A server restarted without persistence has lost the stream and the groups: every lease
  then fails with ``NOGROUP``. The outbox recreates what is missing (at the next lease or
  ``maintain``, logged once per recovery with OCDP323) and carries on.
- Concurrent ``put`` calls share round trips (group commit, ``commit.py``): a lone caller
  sends its own put at once; callers arriving while a round trip is under way go together in
  the next one (one put-many script call), each returning once Redis answered for it.
  ``put_soon`` is the same put for an event loop, resolved by the committer thread.
- ``replicas=N`` makes each write ``WAIT`` for N replicas in the same round trip and on the
  same connection (``WAIT`` counts that connection's writes): what a caller was told is
  stored survives a failover (the cluster queue, ``cluster.py``, sets it to 1).
- ``put`` runs on a connection of its own whose every wait (connect, send, reply) is bounded
  by ``put_timeout`` and never retried inside redis-py, so a paused or unreachable server
  costs a caller at most about that long; the caller's spill takes the message instead. The
  idempotency guard and the rate-limit buckets share that connection (``shared_state``):
  the guard's claim is on the caller's path too. ``stats`` (which ``flush``, ``close`` and
  ``health`` poll) waits at most a second, and ``close`` at most ``put_timeout``.
- A server that takes no writes from this user (an ACL user without the commands the queue
  runs, a read-only replica) is refused at construction with a ConfigurationError naming
  what is missing, rather than spilling every put for ever. A server that refuses writes
  for a while (``maxmemory`` with ``noeviction``) is an OutboxError on the writes it refuses,
  with the reason; acknowledgements still go through (``XACK`` is allowed at the memory
  limit, and the scripts' later writes run once it has acted), and a lease still hands out
  what the stream holds.

Every state change is one Lua script, so two workers never both act on an entry:
``XACK`` returns whether this call was the one that finished it. "Durable on return" means
the server acknowledged the ``XADD``; what survives a crash of Redis itself is Redis's own
persistence setting (``appendonly yes`` for the strictest).

Written on redis-py rather than a queue library (rq, celery, walrus) because those own the
worker loop and serialisation; here the dispatcher owns both and needs only the state
transitions above.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import weakref
from collections.abc import Sequence
from typing import Any

import orjson
import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import clock, registry
from ..errors import ConfigurationError, OutboxError
from ..message import Message, dumps_message, loads_message, ulid_str
from .base import (
    HOLD_STATES,
    MAX_AHEAD,
    DeadItem,
    DeadLetter,
    Done,
    HoldMark,
    Leased,
    MaybeStoredError,
    Outbox,
    QueueStats,
    RetryItem,
    bound_due,
)
from .base import destination_bit as _bit
from .buffer import PutBuffer
from .commit import GroupCommit

__all__ = ["RedisOutbox"]

_log = logging.getLogger("opencdp.outbox")

_PUT = """
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1], 'd', ARGV[2])
for i = 3, #ARGV do redis.call('HINCRBY', KEYS[2], 'out:' .. ARGV[i], 1) end
return id
"""

_PUT_MANY = """
local n = tonumber(ARGV[1])
for i = 2, n + 1, 2 do redis.call('XADD', KEYS[1], '*', 'm', ARGV[i], 'd', ARGV[i + 1]) end
for i = n + 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], 'out:' .. ARGV[i], tonumber(ARGV[i + 1]))
end
return 1
"""

class _PutArgs(dict[int, list[str]]):
    """The put script's arguments per destination set (its bits, then the names whose
    counters it raises), made on first use: one per set a process writes."""

    def __missing__(self, bits: int) -> list[str]:
        value = [str(bits), *registry.names_in(bits)]
        self[bits] = value
        return value


_PUT_UNLESS = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
for _, e in ipairs(entries) do
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == 'm' and string.sub(f[i + 1], 3, 28) == ARGV[3] then return 0 end
  end
end
redis.call('XADD', KEYS[1], '*', 'm', ARGV[4], 'd', ARGV[5])
for i = 6, #ARGV do redis.call('HINCRBY', KEYS[2], 'out:' .. ARGV[i], 1) end
return 1
"""

_PROMOTE = """
local limit = tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)
if #due < limit then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[3], '+inf', 'LIMIT', 0,
                           limit - #due)
  for _, member in ipairs(stale) do due[#due + 1] = member end
end
for _, member in ipairs(due) do
  local item = cjson.decode(member)
  redis.call('XADD', KEYS[2], '*', 'm', item[1], 'd', item[2], 'a', item[3], 'e', item[4],
             't', item[6] or '')
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

_ACK = """
local n = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3))
if n > 0 then
  redis.call('HINCRBY', KEYS[2], 'out:' .. ARGV[2], -n)
  redis.call('HINCRBY', KEYS[2], 'delivered:' .. ARGV[2], n)
end
return n
"""

_RETRY = """
local n = 0
for i = 2, #ARGV, 3 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i + 2])
    n = n + 1
  end
end
return n
"""

_DEAD = """
local n = 0
for i = 3, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    local f = cjson.decode(ARGV[i + 1])
    redis.call('XADD', KEYS[3], '*', 'dest', ARGV[2], 'id', f[1], 'm', f[2], 'reason', f[3],
               'status', f[4], 'attempts', f[5], 'dead_at', f[6])
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[2], 'out:' .. ARGV[2], -n)
  redis.call('HINCRBY', KEYS[2], 'dead:' .. ARGV[2], n)
end
return n
"""

_REMOVE_DEAD = """
local n = 0
for i = 1, #ARGV, 4 do
  if redis.call('XDEL', KEYS[3], ARGV[i]) == 1 then
    if ARGV[i + 3] ~= '' then
      redis.call('XADD', KEYS[1], '*', 'm', ARGV[i + 3], 'd', ARGV[i + 1])
      redis.call('HINCRBY', KEYS[2], 'out:' .. ARGV[i + 2], 1)
    end
    redis.call('HINCRBY', KEYS[2], 'dead:' .. ARGV[i + 2], -1)
    n = n + 1
  end
end
return n
"""

_NEXT_DUE = """
local out = tonumber(redis.call('HGET', KEYS[3], 'out:' .. ARGV[1]) or '0')
local leased = redis.call('XPENDING', KEYS[1], ARGV[1])[1]
local waiting = redis.call('ZCARD', KEYS[2])
local oldest = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', 0, '-', '+', 1)
local idle = -1
if #oldest > 0 then idle = oldest[1][3] end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local score = ''
if #first > 0 then score = first[2] end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local latest = ''
if #last > 0 then latest = last[2] end
return {out - leased - waiting, idle, score, redis.call('HGET', KEYS[4], 'lease:' .. ARGV[1]),
        latest}
"""

_OLDEST = """
local function since(id, first)
  if first and first ~= '' then return first end
  return tostring(tonumber(string.match(id, '^(%d+)')) / 1000)
end
local function born(id)
  local f = redis.call('XRANGE', KEYS[1], id, id)[1]
  if f then
    f = f[2]
    for i = 1, #f, 2 do if f[i] == 't' then return since(id, f[i + 1]) end end
  end
  return since(id)
end
local oldest = ''
local pel = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1)
if #pel > 0 then oldest = pel[1][1] end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, ldi
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then ldi = g[i + 1] end
  end
  if name == ARGV[1] then
    local unread = redis.call('XRANGE', KEYS[1], '(' .. ldi, '+', 'COUNT', 1)
    if #unread > 0 and (oldest == '' or #pel == 0) then oldest = unread[1][1] end
  end
end
if oldest ~= '' then oldest = born(oldest) end
local first = redis.call('ZRANGE', KEYS[2], 0, 0)
local parked = ''
if #first > 0 then
  local item = cjson.decode(first[1])
  parked = since(item[5], item[6])
end
return {oldest, parked}
"""

_TRIM = """
local function older(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local keep = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, ldi, pending
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then ldi = g[i + 1] end
    if g[i] == 'pending' then pending = g[i + 1] end
  end
  local need = ldi
  if pending > 0 then need = redis.call('XPENDING', KEYS[1], name, '-', '+', 1)[1][1] end
  if keep == nil or older(need, keep) then keep = need end
end
if keep == nil then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', keep)
"""

_LEAVE = """
local gone = 0
for i = 2, #ARGV do
  local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[i])
  if type(consumers) == 'table' and not consumers.err then
    for _, c in ipairs(consumers) do
      local name, pending
      for j = 1, #c, 2 do
        if c[j] == 'name' then name = c[j + 1] end
        if c[j] == 'pending' then pending = c[j + 1] end
      end
      if name == ARGV[1] and pending == 0 then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[i], ARGV[1])
        gone = gone + 1
      end
    end
  end
end
return gone
"""

_SET_HOLD = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local state = ''
local since = ARGV[3]
if current then
  state = string.match(current, '^([^|]*)')
  since = string.match(current, '^[^|]*|([^|]*)')
end
for i = 5, #ARGV do
  if ARGV[i] == state then
    local value = ARGV[2] .. '|' .. since .. '|' .. ARGV[3]
    redis.call('HSET', KEYS[1], ARGV[1], value)
    return value
  end
end
return current or ''
"""

_PURGE_PENDING = """
local group, before, limit, bit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local function mine(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then return math.floor(tonumber(fields[i + 1]) / bit) % 2 == 1 end
  end
  return false
end
local function older(id)
  return before == '' or tonumber(string.match(id, '^(%d+)')) < tonumber(before)
end
local n, more = 0, 0
local ldi = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == group then ldi = last end
end
if ldi then
  local top = '+'
  if before ~= '' then top = '(' .. before .. '-0' end
  local unread = redis.call('XRANGE', KEYS[1], '(' .. ldi, top, 'COUNT', limit)
  for _, e in ipairs(unread) do if mine(e[2]) then n = n + 1 end end
  if #unread > 0 then
    redis.call('XGROUP', 'SETID', KEYS[1], group, unread[#unread][1])
    if #unread == limit then more = 1 end
  end
  local idle = redis.call('XPENDING', KEYS[1], group, 'IDLE', tonumber(ARGV[5]), '-', '+', limit)
  local acked = 0
  for _, p in ipairs(idle) do
    if older(p[1]) then
      acked = acked + redis.call('XACK', KEYS[1], group, p[1])
    end
  end
  n = n + acked
  if #idle == limit and acked > 0 then more = 1 end
end
local parked = redis.call('ZRANGE', KEYS[3], 0, -1)
local dropped = 0
for _, member in ipairs(parked) do
  if dropped >= limit then more = 1 break end
  local item = cjson.decode(member)
  local first = item[6]
  local born = first and first ~= '' and tonumber(first) * 1000 or
               tonumber(string.match(item[5], '^(%d+)'))
  if before == '' or born < tonumber(before) then
    redis.call('ZREM', KEYS[3], member)
    dropped = dropped + 1
  end
end
n = n + dropped
if n > 0 then redis.call('HINCRBY', KEYS[2], 'out:' .. group, -n) end
return {n, more}
"""

_NO_WRITES = "#!lua flags=no-writes\n"
"""Redis >= 7: a read-only script, answered while writes are paused or refused."""

_CONTROL_TIMEOUT = 1.0
"""The most ``stats`` waits for Redis: ``flush``, ``close`` and ``health`` poll it."""

_BATCH_LIMIT = 5000
_GROUP_LIMIT = 512  # puts in one grouped round trip: one script call of ~512 XADDs is ~1 ms
_UNWAITED = 5.0
_UNLESS_SCAN = 20_000  # entries searched for an earlier, timed-out write of the same message
_TRIM_EVERY = 1.0
_CLAIM_EVERY = 0.25

_instances: weakref.WeakSet[RedisOutbox] = weakref.WeakSet()


def _after_fork() -> None:
    for outbox in list(_instances):
        outbox._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)



def _consumer_pending(summary: Any, consumer: str) -> int:
    """Entries pending for ``consumer`` in an ``XPENDING`` summary reply."""
    if not isinstance(summary, dict):
        return 0
    for entry in summary.get("consumers") or ():
        if isinstance(entry, dict) and _text(entry.get("name", "")) == consumer:
            return int(entry.get("pending", 0))
    return 0

def _probe(tag: str) -> list[tuple[str, tuple[Any, ...]]]:
    """Every command the queue and what shares its connection run (in scripts too), each
    once on keys of a probe under the queue's prefix (so ACL key patterns count), and the
    probe's keys deleted at the end."""
    key = f"{tag}:probe:{secrets.token_hex(4)}"
    zset, table, flag = f"{key}:z", f"{key}:h", f"{key}:k"
    flagged = _NO_WRITES + "return 1"
    sha = hashlib.sha1(flagged.encode(), usedforsecurity=False).hexdigest()
    return [
        ("xgroup|create", ("XGROUP", "CREATE", key, "g", "0", "MKSTREAM")),
        ("xadd", ("XADD", key, "*", "p", "1")),
        ("xreadgroup", ("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", key, ">")),
        ("xautoclaim", ("XAUTOCLAIM", key, "g", "c", "0", "0-0", "COUNT", "1")),
        ("xpending", ("XPENDING", key, "g")),
        ("xinfo|groups", ("XINFO", "GROUPS", key)),
        ("xinfo|consumers", ("XINFO", "CONSUMERS", key, "g")),
        ("xack", ("XACK", key, "g", "0-1")),
        ("xrange", ("XRANGE", key, "-", "+", "COUNT", "1")),
        ("xrevrange", ("XREVRANGE", key, "+", "-", "COUNT", "1")),
        ("xtrim", ("XTRIM", key, "MINID", "0")),
        ("xdel", ("XDEL", key, "0-1")),
        ("xgroup|delconsumer", ("XGROUP", "DELCONSUMER", key, "g", "c")),
        ("zadd", ("ZADD", zset, "0", "m")),
        ("zrangebyscore", ("ZRANGEBYSCORE", zset, "-inf", "0")),
        ("zrange", ("ZRANGE", zset, "0", "0")),
        ("zcard", ("ZCARD", zset)),
        ("zrem", ("ZREM", zset, "m")),
        ("hset", ("HSET", table, "f", "1")),
        ("hincrby", ("HINCRBY", table, "f", "1")),
        ("hget", ("HGET", table, "f")),
        ("hmget", ("HMGET", table, "f")),
        ("hgetall", ("HGETALL", table)),
        ("expire", ("EXPIRE", table, "60")),
        ("set", ("SET", flag, "1", "NX", "PX", "1000")),
        ("script|load", ("SCRIPT", "LOAD", flagged)),
        ("script|exists", ("SCRIPT", "EXISTS", sha)),
        ("evalsha", ("EVALSHA", sha, "0")),
        ("del", ("DEL", key, zset, table, flag)),
    ]


_REFUSALS = (
    (redis.exceptions.OutOfMemoryError,
     "Redis refuses writes: it is at its memory limit (maxmemory with the noeviction policy); "
     "puts go to the local spill and retries wait until it has room again"),
    (redis.exceptions.ReadOnlyError,
     "Redis refuses writes: the server is a read-only replica; point the queue at the primary"),
    (redis.exceptions.NoPermissionError,
     "the Redis user may not run a command the queue needs"),
    (redis.exceptions.TimeoutError,
     "Redis did not answer in time (paused, stopped or overloaded)"),
)


def _describe(exc: BaseException) -> str:
    """An operator's reading of a Redis error, with the server's own words after it."""
    for kind, meaning in _REFUSALS:
        if isinstance(exc, kind):
            return f"{type(exc).__name__}: {meaning} ({exc})"
    return f"{type(exc).__name__}: {exc}"


class _InFlight:
    __slots__ = ("attempt", "body", "enqueued", "entry")

    def __init__(self, entry: bytes, body: bytes, attempt: int, enqueued: float) -> None:
        self.entry = entry
        self.body = body
        self.attempt = attempt
        self.enqueued = enqueued


class _MissingGroup(OutboxError):
    """NOGROUP: the stream or a consumer group is gone (a restart without persistence)."""


class RedisOutbox(Outbox):
    """Durable outbox on Redis Streams, shared by any number of processes and hosts.

    ``url`` is a ``redis://`` or ``rediss://`` URL (password and TLS as redis-py reads
    them); ``prefix`` namespaces the keys, so several apps can share one database.
    ``durability="batched"`` sends buffered puts (one script call per thousand) from a
    background thread every ``batch_interval`` seconds: a SIGKILL can lose the calls of the
    last interval. ``put_timeout`` bounds each wait of a ``put`` (default ``socket_timeout``).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "opencdp",
        durability: str = "durable",
        batch_interval: float = 0.005,
        socket_timeout: float = 5.0,
        put_timeout: float | None = None,
        logger: logging.Logger | None = None,
        replicas: int = 0,
    ) -> None:
        if durability not in ("durable", "batched"):
            raise ConfigurationError(
                f"durability must be 'durable' or 'batched', got {durability!r}"
            )
        if not prefix or any(c in prefix for c in "{} \t\n"):
            raise ConfigurationError(f"invalid Redis key prefix {prefix!r}")
        self.durable = True
        self.durability = durability
        self.batch_interval = batch_interval
        self.prefix = prefix
        self._log = logger or _log
        self._url = url
        self._socket_timeout = socket_timeout
        self._put_timeout = socket_timeout if put_timeout is None else put_timeout
        if not self._put_timeout > 0:
            raise ConfigurationError(f"put_timeout must be > 0 seconds, got {put_timeout!r}")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ConfigurationError(f"replicas must be a whole number >= 0, got {replicas!r}")
        self.replicas = replicas
        # WAIT must answer before the put's own socket timeout does.
        self._replica_wait_ms = max(1, int(min(self._put_timeout, self._socket_timeout) * 500))
        self._unwaited_until = 0.0
        tag = "{" + prefix + "}"
        self._stream = f"{tag}:stream"
        self._counts = f"{tag}:counts"
        self._dead = f"{tag}:dead"
        self._meta = f"{tag}:meta"
        self._hold = f"{tag}:hold"
        self._names = registry.names()
        self._bits = {name: registry.bit(name) for name in self._names}
        self._mask = registry.mask()
        self._delayed = {bit: f"{tag}:delayed:{name}" for name, bit in self._bits.items()}
        self._closed = False
        self._read_only = ""
        self._connect()
        self._put_args = _PutArgs()
        self._init_state()
        try:
            self._open()
        except BaseException:
            self._disconnect()
            raise
        _instances.add(self)

    def _open(self) -> None:
        try:
            self._check_rights()
            self._create_groups()
        except redis.exceptions.OutOfMemoryError as exc:
            raise OutboxError(self._scrub(f"the Redis outbox failed: {_describe(exc)}")) from None
        except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as exc:
            raise ConfigurationError(self._scrub(
                f"the Redis server refused the queue: {_describe(exc)}")) from None
        except redis.exceptions.RedisError as exc:
            raise OutboxError(self._scrub(f"the Redis outbox failed: {_describe(exc)}")) from None

    def _disconnect(self) -> None:
        for client in (self._redis, self._put_redis, self._quick_redis):
            with contextlib.suppress(redis.exceptions.RedisError):
                client.close()

    def _client(self, timeout: float, retries: int) -> Any:
        """A client whose every wait is ``timeout``, retrying a dropped connection (a
        restart) ``retries`` times at once and a timeout never, so one call waits about
        ``timeout``, not a multiple of it. The scripts are safe to run twice (each acts only
        on what ``XACK``/``ZREM``/``XDEL`` says it still holds); a put is not retried."""
        return redis.Redis.from_url(
            self._url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), retries,
                        supported_errors=(redis.exceptions.ConnectionError,)),
            health_check_interval=0)

    def _connect(self) -> None:
        """Fresh clients and scripts (also in a forked child: nothing of the parent's).

        Three clients: the engine's own (``socket_timeout``); the caller's (``put_timeout``,
        never retried), also lent to the idempotency guard and the rate-limit buckets
        through ``shared_state``; and a short one for ``stats`` and ``close``, which
        ``flush``, ``close`` and ``health`` wait on. None lets redis-py retry a timeout
        (its default since 6.0 is three retries with backoff: a paused server would hold
        a lane for half a minute instead of ``socket_timeout``)."""
        try:
            self._redis = self._client(self._socket_timeout, retries=1)
            self._put_redis = self._client(self._put_timeout, retries=0)
            self._quick_redis = self._client(min(self._socket_timeout, _CONTROL_TIMEOUT),
                                             retries=1)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL: {exc}") from None
        self._register()

    def _register(self) -> None:
        self._put_script = self._put_redis.register_script(_PUT)
        self._put_many = self._put_redis.register_script(_PUT_MANY)
        self._put_unless = self._put_redis.register_script(_PUT_UNLESS)
        self._promote = self._redis.register_script(_PROMOTE)
        self._ack_script = self._redis.register_script(_ACK)
        self._retry_script = self._redis.register_script(_RETRY)
        self._dead_script = self._redis.register_script(_DEAD)
        self._remove_dead_script = self._redis.register_script(_REMOVE_DEAD)
        self._next_due_script = self._redis.register_script(self._read_only + _NEXT_DUE)
        self._trim_script = self._redis.register_script(_TRIM)
        self._oldest_script = self._redis.register_script(self._read_only + _OLDEST)
        self._leave = self._put_redis.register_script(_LEAVE)
        self._set_hold_script = self._redis.register_script(_SET_HOLD)
        self._purge_pending_script = self._redis.register_script(_PURGE_PENDING)

    def _scrub(self, text: str) -> str:
        password = self._redis.connection_pool.connection_kwargs.get("password")
        return text.replace(password, "***") if password else text

    def _check_rights(self) -> None:
        """Refuse a server that would take no writes from this user, where the connection is
        first checked: a user without the rights the queue needs (NOPERM) or a read-only
        replica (READONLY). Otherwise every put would spill and nothing would ever be
        delivered, with nothing but a log line per interval to say why. One round trip
        (the probe), which also tells whether the server takes read-only scripts."""
        commands = _probe("{" + self.prefix + "}")
        pipe = self._redis.pipeline(transaction=False)
        for _name, args in commands:
            pipe.execute_command(*args)
        replies = pipe.execute(raise_on_error=False)
        missing: list[str] = []
        unknown: list[str] = []
        keys = replica = False
        flags = True
        for (name, _args), reply in zip(commands, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoPermissionError):
                keys = keys or "key" in str(reply).lower()
                said = re.search(r"'([a-z|]+)' command", str(reply))
                missing.append(said.group(1) if said else name)
            elif isinstance(reply, redis.exceptions.ReadOnlyError):
                replica = True
            elif isinstance(reply, redis.exceptions.ResponseError) and name == "script|load":
                flags = False  # before Redis 7: no script flags
            elif isinstance(reply, redis.exceptions.ResponseError) and "unknown" in str(reply):
                unknown.append(name)
        user = self._redis.connection_pool.connection_kwargs.get("username") or "default"
        if missing:
            grant = " ".join(f"+{c}" for c in dict.fromkeys(missing))
            where = f" on the keys {{{self.prefix}}}:*" if keys else ""
            raise ConfigurationError(self._scrub(
                f"the Redis user {user!r} may not run {', '.join(dict.fromkeys(missing))}"
                f"{where}, which the queue needs (the server answered NOPERM); grant them "
                f"(ACL SETUSER {user} {grant}{where and f' ~{{{self.prefix}}}:*'}) or use "
                "a user that has them"))
        if unknown:
            raise ConfigurationError(
                f"the Redis server does not know {', '.join(unknown)}, which the queue needs "
                "(Redis 6.2 or later)")
        if replica:
            raise ConfigurationError(
                "the Redis server is a read-only replica (it answered READONLY to the queue's "
                "writes); point the queue at the primary")
        self._read_only = _NO_WRITES if flags else ""
        self._register()
        # Loaded now: loading a script is itself refused while writes are paused.
        pipe = self._redis.pipeline(transaction=False)
        for script in (self._next_due_script, self._oldest_script):
            pipe.script_load(script.script)
        pipe.execute(raise_on_error=False)

    def _create_groups(self, client: Any = None) -> list[str]:
        """Create the stream and whichever consumer groups are missing; returns their names.
        Existing groups are read first: at its memory limit Redis refuses even an
        ``XGROUP CREATE`` that would find the group there."""
        client = client or self._redis
        try:
            have = {_text(g["name"]) for g in client.xinfo_groups(self._stream)}
        except redis.exceptions.ResponseError:
            have = set()  # no such key
        created = []
        for name in self._names:
            if name in have:
                continue
            try:
                client.xgroup_create(self._stream, name, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            else:
                created.append(name)
        return created

    def _recover(self, client: Any = None) -> None:
        """Recreate lost groups (a server restarted without persistence) and say so once."""
        created = self._create_groups(client)
        if created:
            self._claim_cursor = {bit: "0-0" for bit in self._bits.values()}
            self._lease_seconds = -1.0
            self._log.warning(
                "[CDP] OCDP323 the Redis queue %s had lost its stream or consumer group(s) "
                "%s (a restart without persistence?); recreated them. Messages it held before "
                "are gone from Redis; messages put while it was down come from the spill.",
                self._stream, ", ".join(created),
            )

    def maintain(self, now: float) -> None:
        """Recreate a lost stream or consumer groups; bounded by ``put_timeout``."""
        if self._closed:
            return
        try:
            groups = {_text(g["name"]) for g in self._put_redis.xinfo_groups(self._stream)}
        except redis.exceptions.ResponseError:
            groups = set()  # no such key
        except redis.exceptions.RedisError:
            return  # down: the next call tries again
        if not set(self._names) <= groups:
            with contextlib.suppress(redis.exceptions.RedisError):
                self._recover(self._put_redis)

    def after_fork(self) -> None:
        if self._pid != os.getpid():
            self._reset_after_fork()

    def repoint(self, url: str) -> None:
        """Talk to the server at ``url`` from now on (a cluster partition whose slot moved to
        a promoted replica), keeping this instance's consumer name and leases: the entries
        it leased are in the group's pending list there too (replicated), so its
        acknowledgements still land, and nobody else delivers them again."""
        old = (self._redis, self._put_redis, self._quick_redis)
        self._url = url
        self._connect()
        for client in old:
            with contextlib.suppress(redis.exceptions.RedisError):
                client.close()

    def pending_messages(self) -> int:
        return len(self._buffer)

    def __repr__(self) -> str:
        return f"RedisOutbox(prefix={self.prefix!r}, durability={self.durability!r})"

    def shared_state(self) -> tuple[Any, str] | None:
        """The connection and key prefix other per-destination state can share (the rate
        limit buckets and the idempotency guard), so every process sees the same. It is the
        put's connection: the guard's claim runs on the caller's path before the put, and
        must cost no more than the put (``put_timeout``, no retries inside redis-py)."""
        return self._put_redis, "{" + self.prefix + "}:"

    def _init_state(self) -> None:
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._group: GroupCommit[tuple[bytes, int]] = GroupCommit(
            self._write_group, wait=2 * self._put_timeout + 0.1, limit=_GROUP_LIMIT,
            name="opencdp-redis-commit")
        self._inflight: dict[int, dict[int, _InFlight]] = {bit: {} for bit in self._bits.values()}
        self._buffer: PutBuffer[tuple[bytes, int]] = PutBuffer(
            self._write_many, interval=self.batch_interval, name="opencdp-redis-flush",
            log=self._log, limit=_BATCH_LIMIT, chunk=1000)
        self._claim_cursor = {bit: "0-0" for bit in self._bits.values()}
        self._next_claim = {bit: 0.0 for bit in self._bits.values()}  # wall clock
        self._last_trim = clock.monotonic()
        self._lease_seconds = -1.0  # as last recorded in Redis by this instance
        self._pid = os.getpid()

    def _reset_after_fork(self) -> None:
        # The parent's clients (and their sockets) are left alone, never closed here; the
        # child connects anew. The parent's leases and buffered puts stay the parent's.
        self._connect()
        self._init_state()

    @contextlib.contextmanager
    def _errors(self) -> Any:
        if self._closed:
            raise OutboxError("the Redis outbox is closed")
        try:
            yield
        except redis.exceptions.RedisError as exc:
            kind: type[OutboxError] = OutboxError
            if "NOGROUP" in str(exc):
                kind = _MissingGroup
            elif isinstance(exc, redis.exceptions.TimeoutError) or (
                isinstance(exc, redis.exceptions.ConnectionError) and "connecting" not in str(exc)
            ):
                kind = MaybeStoredError  # sent, and maybe executed: no answer in time
            raise kind(self._scrub(f"the Redis outbox failed: {_describe(exc)}")) from None

    def _recovering(self, call: Any, *args: Any) -> Any:
        """Run ``call``; if the groups are gone, recreate them and run it once more."""
        try:
            return call(*args)
        except _MissingGroup:
            pass
        with self._errors():
            self._recover()
        return call(*args)

    # caller's thread -------------------------------------------------------------------
    def put(self, message: Message) -> None:
        dests = message.destinations & self._mask
        if not dests:
            return
        if self.durability == "batched":
            self._buffer.add((dumps_message(message), dests))
            return
        self._group.commit((dumps_message(message), dests))

    def put_soon(self, message: Message, done: Done) -> bool:
        """The put, answered by the committer thread through ``done``: an event loop waits
        for the answer instead of lending a thread to wait."""
        dests = message.destinations & self._mask
        if not dests or self.durability == "batched":
            self.put(message)  # no round trip to wait for
            done(None)
            return True
        if self._closed:
            raise OutboxError("the Redis outbox is closed")
        self._group.submit((dumps_message(message), dests), done)
        return True

    def _write_group(self, rows: Sequence[tuple[bytes, int]]) -> None:
        """One round trip for a group of puts (the committer's ``write``)."""
        if len(rows) == 1:
            body, dests = rows[0]
            with self._errors():
                self._script(self._put_script, [self._stream, self._counts],
                             [body, *self._put_args[dests]], self._put_redis)
            return
        self._write_many(rows)

    def put_many(self, messages: Sequence[Message]) -> None:
        mask = self._mask
        rows = [(dumps_message(m), m.destinations & mask) for m in messages
                if m.destinations & mask]
        for start in range(0, len(rows), 1000):
            self._write_many(rows[start:start + 1000])

    def put_unless_stored(self, message: Message, since: float) -> None:
        dests = message.destinations & self._mask
        if not dests:
            return
        start = f"{max(0, int((since - 1.0) * 1000))}-0"  # a second of slack for clock skew
        with self._errors():
            self._script(self._put_unless, [self._stream, self._counts],
                         [start, _UNLESS_SCAN, message.ulid, dumps_message(message),
                          *self._put_args[dests]], self._put_redis)

    def _write_many(self, rows: Sequence[tuple[bytes, int]]) -> None:
        # One script call per chunk: one XADD per message on the server, one round trip and
        # almost no client-side work per message.
        with self._errors():
            self._script(self._put_many, [self._stream, self._counts], self.many_args(rows),
                         self._put_redis)

    def many_args(self, rows: Sequence[tuple[bytes, int]]) -> list[Any]:
        """The put-many script's arguments for ``rows`` (its keys: ``many_keys``)."""
        args: list[Any] = []
        counts = dict.fromkeys(self._bits.values(), 0)
        for body, dests in rows:
            args += (body, dests)
            for bit in counts:
                if dests & bit:
                    counts[bit] += 1
        totals = [x for name, bit in self._bits.items() if counts[bit]
                  for x in (name, counts[bit])]
        return [len(args), *args, *totals]

    @property
    def many_keys(self) -> list[str]:
        return [self._stream, self._counts]

    @property
    def put_many_script(self) -> Any:
        return self._put_many

    def _wait_in(self, pipe: Any) -> bool:
        """Append ``WAIT`` for the replicas to ``pipe`` when they are waited for."""
        if not self.replicas or clock.monotonic() < self._unwaited_until:
            return False
        pipe.execute_command("WAIT", self.replicas, self._replica_wait_ms)
        return True

    def _script(self, script: Any, keys: list[Any], args: list[Any], client: Any) -> Any:
        """Run ``script``; with ``replicas``, ``WAIT`` for them in the same round trip and on
        the same connection (WAIT counts the writes of its own connection only), so a write
        acknowledged here survives the promotion of a replica. A node whose replicas do not
        confirm in time (none left after a failover, or lagging) is not waited for during
        ``_UNWAITED`` seconds: the write stands on the primary, as without ``replicas``."""
        if not self.replicas or clock.monotonic() < self._unwaited_until:
            return script(keys=keys, args=args, client=client)
        for _ in range(2):
            pipe = client.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.replicas, self._replica_wait_ms)
            result, acked = pipe.execute(raise_on_error=False)
            if isinstance(result, redis.exceptions.NoScriptError):
                client.script_load(script.script)  # not run: load it and send again
                continue
            if isinstance(result, BaseException):
                raise result
            if isinstance(acked, BaseException) or int(acked) < self.replicas:
                self._unwaited_until = clock.monotonic() + _UNWAITED
                self._log.warning(
                    "[CDP] OCDP390 the Redis node of %s did not confirm a write on %d "
                    "replica(s) within %d ms (%s); writes there are not waited for during "
                    "%g s, so a failover meanwhile can lose the last of them",
                    self._stream, self.replicas, self._replica_wait_ms,
                    acked if isinstance(acked, BaseException) else f"{acked} confirmed",
                    _UNWAITED)
            return result
        raise redis.exceptions.NoScriptError("the script could not be loaded")

    def flush(self) -> None:
        """Send buffered puts now (batched mode); a no-op in durable mode."""
        self._buffer.commit()

    # dispatcher's thread -----------------------------------------------------------------
    def lease(self, destination: str, limit: int, now: float, lease_seconds: float) -> list[Leased]:
        result: list[Leased] = self._recovering(self._lease, destination, limit, now,
                                                lease_seconds)
        return result

    def _lease(self, destination: str, limit: int, now: float, lease_seconds: float
               ) -> list[Leased]:
        """Writes that only bring retries back or record the lease time are best-effort and
        ride in the read's round trip: a server refusing writes (at its memory limit) still
        hands out what it holds, since ``XREADGROUP``, ``XACK`` and ``XDEL`` free memory or
        need none. The refusal is raised when the lease has nothing else to hand out."""
        bit = _bit(destination)
        if self._buffer:
            self._buffer.commit()
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        refused: BaseException | None = None
        with self._errors():
            if clock.wall() >= self._next_claim[bit]:
                self._next_claim[bit] = clock.wall() + min(_CLAIM_EVERY, lease_seconds)
                claim = self._redis.pipeline(transaction=False)
                claim.xautoclaim(
                    self._stream, destination, self.consumer,
                    min_idle_time=max(1, int(lease_seconds * 1000)),
                    start_id=self._claim_cursor[bit], count=limit,
                )
                self._wait_in(claim)
                cursor, claimed, *_ = claim.execute()[0]
                self._claim_cursor[bit] = _text(cursor)
                entries.extend(e for e in claimed if e and e[1])
            def ours(entry: tuple[bytes, dict[bytes, bytes]]) -> bool:
                return bool(int(entry[1].get(b"d", b"0")) & bit)

            wanted = limit - sum(1 for e in entries if ours(e))
            for round_ in range(10):  # read again only while whole reads were for other lanes
                if wanted <= 0:
                    break
                pipe = self._redis.pipeline(transaction=False)
                record = round_ == 0 and lease_seconds != self._lease_seconds
                if record:
                    pipe.hset(self._meta, f"lease:{destination}", repr(float(lease_seconds)))
                if round_ == 0:
                    self._promote(keys=[self._delayed[bit], self._stream],
                                  args=[now, limit, repr(now + MAX_AHEAD)], client=pipe)
                pipe.xreadgroup(destination, self.consumer, {self._stream: ">"}, count=wanted)
                # A lease is a write too: lost in a failover, its entries would be read again.
                waited = self._wait_in(pipe)
                *writes, read = pipe.execute(raise_on_error=False)[:-1 if waited else None]
                if isinstance(read, BaseException):
                    raise read
                refused = next((w for w in writes if isinstance(w, BaseException)), refused)
                if record and not isinstance(writes[0], BaseException):
                    self._lease_seconds = lease_seconds
                fresh = [e for _stream, items in read or () for e in items]
                entries.extend(fresh)
                got = sum(1 for e in fresh if ours(e))
                if not fresh or got:
                    break
            out: list[Leased] = []
            skip: list[bytes] = []
            inflight = self._inflight[bit]
            for entry in entries:
                entry_id, fields = entry
                if not ours(entry):
                    skip.append(entry_id)
                    continue
                body = fields[b"m"]
                attempt = int(fields.get(b"a", 0))
                error = fields.get(b"e")
                first = fields.get(b"t")
                enqueued = float(first) if first else _stream_id(entry_id)[0] / 1000
                message = loads_message(body)
                inflight[message.id] = _InFlight(entry_id, body, attempt, enqueued)
                out.append(Leased(message, attempt, _text(error) if error else None, enqueued))
            if skip:
                self._redis.xack(self._stream, destination, *skip)
            if refused is not None and not out:
                raise refused
        return out

    def _take(self, bit: int, ids: Sequence[int]) -> list[tuple[int, _InFlight]]:
        inflight = self._inflight[bit]
        return [(i, item) for i in ids if (item := inflight.pop(i, None)) is not None]

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        bit = _bit(destination)
        taken = self._take(bit, ids)
        if not taken:
            return
        try:
            with self._errors():
                self._script(self._ack_script, [self._stream, self._counts],
                             [destination, destination, *(t.entry for _, t in taken)],
                             self._redis)
        except OutboxError:
            # Still leased here: a later ack (or the lane's retry) of the same ids acts.
            self._inflight[bit].update(taken)
            raise
        self._maybe_trim()

    def retry(self, destination: str, items: Sequence[RetryItem]) -> None:
        bit = _bit(destination)
        taken = dict(self._take(bit, [item.id for item in items]))
        args: list[Any] = [destination]
        for item in items:
            held = taken.get(item.id)
            if held is None:
                continue
            attempt = held.attempt + 1 if item.attempt is None else item.attempt
            member = orjson.dumps([held.body.decode(), str(bit), str(attempt),
                                   item.error or "", held.entry.decode(), repr(held.enqueued)])
            args += [held.entry, item.not_before, member]
        if len(args) > 1:
            with self._errors():
                self._script(self._retry_script, [self._stream, self._delayed[bit]], args,
                             self._redis)

    def dead(self, destination: str, items: Sequence[DeadItem], now: float) -> None:
        bit = _bit(destination)
        taken = dict(self._take(bit, [item.id for item in items]))
        args: list[Any] = [destination, destination]
        for item in items:
            held = taken.get(item.id)
            if held is None:
                continue
            fields = orjson.dumps([
                ulid_str(item.id), held.body.decode(), item.reason,
                "" if item.status is None else str(item.status), str(held.attempt + 1),
                repr(float(now)),
            ])
            args += [held.entry, fields]
        if len(args) > 2:
            with self._errors():
                self._script(self._dead_script, [self._stream, self._counts, self._dead], args,
                             self._redis)

    def _maybe_trim(self) -> None:
        if clock.monotonic() - self._last_trim < _TRIM_EVERY:
            return
        self._last_trim = clock.monotonic()
        with self._errors():
            self._trim_script(keys=[self._stream])

    def trim(self) -> int:
        """Drop stream entries every destination is done with; returns how many."""
        with self._errors():
            return int(self._trim_script(keys=[self._stream]))

    def next_due(self, destination: str, now: float) -> float | None:
        due: float | None = self._recovering(self._next_due, destination, now)
        return due

    def _next_due(self, destination: str, now: float) -> float | None:
        bit = _bit(destination)
        if self._buffer:
            return now
        with self._errors():
            fresh, idle, score, shared_lease, latest = self._next_due_script(
                keys=[self._stream, self._delayed[bit], self._counts, self._meta],
                args=[destination],
            )
        if int(fresh) > 0:
            return now
        due: float | None = None
        if int(idle) >= 0:
            # The lease time the queue's lanes use (as last recorded by any of them); an
            # expired lease is claimed at this instance's next claim, not sooner.
            lease_seconds = float(shared_lease) if shared_lease else 30.0
            due = max(now + max(0.0, lease_seconds - int(idle) / 1000), self._next_claim[bit])
        if latest and bound_due(float(latest), now) == now:
            return now  # a not-before time from before the clock stepped back
        if score:
            at = float(score)
            due = at if due is None else min(due, at)
        if due is None:
            return None
        return now if due <= now else due

    # inspection and dead letters ---------------------------------------------------------
    def stats(self, now: float) -> dict[str, QueueStats]:
        out: dict[str, QueueStats] = self._recovering(self._stats, now)
        return out

    def _stats(self, now: float) -> dict[str, QueueStats]:
        if self._buffer:
            self._buffer.commit()
        with self._errors():
            # One round trip on the short client, read-only (answered while writes are
            # paused or refused): close() and flush() poll this.
            pipe = self._quick_redis.pipeline(transaction=False)
            pipe.hgetall(self._counts)
            for name, bit in self._bits.items():
                pipe.xpending(self._stream, name)
                self._oldest_script(keys=[self._stream, self._delayed[bit]], args=[name],
                                    client=pipe)
            raw, *replies = pipe.execute()
        counts = {_text(k): int(v) for k, v in raw.items()}
        out: dict[str, QueueStats] = {}
        for k, name in enumerate(self._names):
            info, (oldest, parked) = replies[2 * k], replies[2 * k + 1]
            in_flight = int(info.get("pending", 0)) if isinstance(info, dict) else 0
            outstanding = counts.get(f"out:{name}", 0)
            pending = max(0, outstanding - in_flight)
            # When the oldest entry, and the earliest-due retry, first entered the queue
            # (a retried entry carries it): approximate, as a retried entry may be older
            # than the oldest entry id.
            stamps = [float(x) for x in (oldest, parked) if x]
            out[name] = QueueStats(
                pending=pending,
                in_flight=in_flight,
                # The server's count for this consumer, not the leases we know of: a lease
                # whose answer was lost (a timeout) is ours to wait for too.
                in_flight_here=max(len(self._inflight[self._bits[name]]),
                                   _consumer_pending(info, self.consumer)),
                dead=counts.get(f"dead:{name}", 0),
                delivered=counts.get(f"delivered:{name}", 0),
                oldest_pending_age=(
                    max(0.0, now - min(stamps)) if stamps and (pending or in_flight) else None
                ),
            )
        return out

    def _scan_dead(self) -> Any:
        """Dead-letter entries, newest first, a page at a time."""
        end = "+"
        while True:
            with self._errors():
                page = self._redis.xrevrange(self._dead, max=end, min="-", count=500)
            if not page:
                return
            yield from page
            last = _stream_id(page[-1][0])
            if last == (0, 0):
                return
            ms, seq = last
            end = f"{ms}-{seq - 1}" if seq > 0 else f"{ms - 1}-18446744073709551615"

    @staticmethod
    def _letter(fields: dict[bytes, bytes]) -> DeadLetter:
        status = fields.get(b"status", b"")
        return DeadLetter(
            message=loads_message(fields[b"m"]),
            destination=_text(fields[b"dest"]),
            reason=_text(fields[b"reason"]),
            status=int(status) if status else None,
            attempts=int(fields[b"attempts"]),
            dead_at=float(fields[b"dead_at"]),
        )

    def _matching(
        self, destination: str | None, since: float | None, before: float | None = None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        if destination is not None:
            _bit(destination)
        found = []
        for entry_id, fields in self._scan_dead():
            if destination is not None and _text(fields[b"dest"]) != destination:
                continue
            if since is not None and float(fields[b"dead_at"]) < since:
                continue
            if before is not None and float(fields[b"dead_at"]) >= before:
                continue
            found.append((entry_id, fields))
        return found

    def dead_letters(
        self, destination: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        # Entries are in the order they died here, but ``dead_at`` is the caller's clock:
        # sort what matches rather than trusting the stream order.
        letters = [self._letter(fields) for _, fields in self._matching(destination, since)]
        letters.sort(key=lambda d: d.dead_at, reverse=True)
        return letters[:limit]

    def dead_letter(self, message_id: int) -> list[DeadLetter]:
        """The dead letters of one message (one per destination that gave up on it)."""
        wanted = ulid_str(message_id).encode()
        return [self._letter(f) for _, f in self._scan_dead() if f.get(b"id") == wanted]

    def _remove_dead(self, destination: str | None, since: float | None, replay: bool,
                     before: float | None = None) -> int:
        found = self._matching(destination, since, before)
        keys = [self._stream, self._counts, self._dead]
        total = 0
        for start in range(0, len(found), 200):
            args: list[Any] = []
            for entry_id, fields in found[start:start + 200]:
                name = _text(fields[b"dest"])
                args += [entry_id, str(self._bits[name]), name,
                         fields[b"m"] if replay else ""]
            with self._errors():
                total += int(self._remove_dead_script(keys=keys, args=args))
        return total

    def replay(self, destination: str | None = None, since: float | None = None) -> int:
        return self._remove_dead(destination, since, replay=True)

    def purge(self, destination: str | None = None, since: float | None = None,
              before: float | None = None) -> int:
        return self._remove_dead(destination, since, replay=False, before=before)

    # the hold mark ------------------------------------------------------------------------
    @staticmethod
    def _mark(raw: Any) -> HoldMark | None:
        """``state|since|changed`` (Unix seconds) as stored in the ``{P}:hold`` hash."""
        if not raw:
            return None
        state, _, rest = _text(raw).partition("|")
        since, _, changed = rest.partition("|")
        if state not in HOLD_STATES:
            return None
        try:
            return HoldMark(state, float(since), float(changed))
        except ValueError:
            return None

    def hold_mark(self, destination: str) -> HoldMark | None:
        _bit(destination)
        with self._errors():
            return self._mark(self._quick_redis.hget(self._hold, destination))

    def set_hold_mark(self, destination: str, state: str, now: float,
                      expect: tuple[str | None, ...]) -> HoldMark | None:
        _bit(destination)
        if state not in HOLD_STATES:
            raise ValueError(f"unknown hold state {state!r}")
        with self._errors():
            raw = self._set_hold_script(
                keys=[self._hold],
                args=[destination, state, repr(float(now)), "",
                      *("" if e is None else e for e in expect)])
        return self._mark(raw)

    def purge_pending(self, destination: str, before: float | None, now: float) -> int:
        """Unread entries are skipped by moving the group's last-delivered id past them (in
        steps, so a large backlog never blocks the server long), parked retries are removed,
        and entries leased by a process that stopped answering (idle past the lease time)
        are acknowledged."""
        bit = _bit(destination)
        if self._buffer:
            self._buffer.commit()
        with self._errors():
            lease = self._redis.hget(self._meta, f"lease:{destination}")
        idle_ms = int(float(lease or 30.0) * 1000)
        args = [destination, "" if before is None else str(int(before * 1000)), "1000",
                str(bit), str(idle_ms)]

        def step() -> Any:
            with self._errors():
                return self._purge_pending_script(
                    keys=[self._stream, self._counts, self._delayed[bit]], args=args)

        total = 0
        for _ in range(100_000):
            count, more = self._recovering(step)
            total += int(count)
            if not int(more):
                break
        self._maybe_trim()
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._buffer.close()
        self._group.close()
        # Tidying only (a consumer name with nothing pending): bounded by put_timeout, so a
        # paused server does not hold the host's shutdown.
        with contextlib.suppress(redis.exceptions.RedisError):
            self._leave(keys=[self._stream],
                        args=[self.consumer, *self._names])
        self._closed = True
        _instances.discard(self)
        self._disconnect()

    def __enter__(self) -> RedisOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stream_id(value: Any) -> tuple[int, int]:
    ms, _, seq = _text(value).partition("-")
    return int(ms), int(seq or 0)
