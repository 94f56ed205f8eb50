"""The Redis Cluster queue: the Redis outbox, partitioned over hash slots.

One ``redis://`` queue keeps every key under one hash tag, so one cluster node carries all of
it. ``redis+cluster://host:port/?partitions=16`` makes ``partitions`` complete Redis queues
(stream, groups, delayed sets, counters: ``RedisOutbox`` unchanged), each under its own hash
tag, and the tags are chosen so their slots are spread evenly over the 16,384 slots, hence
over the masters. What this module adds:

- **Routing.** A message goes to partition ``crc32(identifier) % partitions``: a person's
  calls always share one stream, so one lane reads them in the order they were put.
- **Ownership.** A process that leases (a worker, or an app that delivers) owns a share of
  the partitions and leases only from those: one reader per partition keeps per-person order
  across processes. Ownership is a key per partition (``SET NX PX``, renewed about once a
  second, ``_OWN_SECONDS`` to live) and a registry of live readers (a sorted set scored by
  expiry); each takes ``ceil(partitions / readers)``, releases what is above its share, and
  picks up partitions whose owner stopped renewing. A worker killed with SIGKILL loses its
  partitions after ``_OWN_SECONDS``; the entries it had leased are claimed by the new owner
  once their lease expires (``XAUTOCLAIM``, as on one Redis). During a hand-over (a reader
  joining or leaving) the giver may still be delivering what it leased while the taker reads
  what follows: per-person order holds except across that moment, as with one Redis and
  several workers.
- **Puts by node.** The puts of one process for every partition on one node share that
  node's round trips (one pipeline, one put-many script per partition, one ``WAIT``).
- **Nodes.** Each partition talks to the master serving its slot through plain redis-py
  clients (scripts, pipelines and ``WAIT`` need one connection to one node); redis-py's
  cluster client is the map: a partition whose calls fail asks it again (at most every
  ``_REMAP_EVERY`` seconds) and follows its slot to the promoted replica (``repoint``),
  keeping its leases.
- **Replicas.** ``replicas=1`` (the default here) makes every write wait for one replica in
  the same round trip (``WAIT``), so what was acknowledged survives the master's death;
  a master with no replica left is not waited for (OCDP390).

The number of partitions is recorded in the cluster at first use; opening the queue with a
different number is refused (OCDP391), because the routing of people to streams would change
under messages already queued.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import secrets
import socket
import threading
import weakref
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

from .. import clock, registry
from ..errors import ConfigurationError, OpenCDPError, OutboxError
from ..message import Message, dumps_message
from .base import (
    DeadItem,
    DeadLetter,
    Done,
    HoldMark,
    Leased,
    MaybeStoredError,
    Outbox,
    QueueStats,
    RetryItem,
)
from .base import destination_bit as _bit
from .commit import GroupCommit
from .redis import _UNWAITED, RedisOutbox, _describe

__all__ = ["RedisClusterOutbox", "partition_tags"]

_log = logging.getLogger("opencdp.outbox")

_OWN_SECONDS = 5.0
"""How long a partition stays owned without renewal: a dead owner's partitions are taken
over this long after its last renewal."""
_BALANCE_EVERY = 1.0
_REMAP_EVERY = 0.5
_SLOTS = 16384

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_instances: weakref.WeakSet[RedisClusterOutbox] = weakref.WeakSet()


def _after_fork() -> None:
    for box in list(_instances):
        box._reset_ownership()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


@functools.lru_cache(maxsize=16)
def partition_tags(prefix: str, partitions: int) -> list[str]:
    """The hash tag of each partition: ``<prefix>-<n>`` with the smallest suffix that puts
    partition ``n`` near the middle of the ``n``-th of ``partitions`` equal slot ranges, so
    an even split of the slots over masters (what ``redis-cli --cluster create`` makes)
    splits the partitions evenly too. Pure: every process agrees."""
    tags = []
    for n in range(partitions):
        width = _SLOTS / partitions
        middle = (n + 0.5) * width
        reach = max(width / 4, 8)
        low, high = middle - reach, middle + reach
        for k in range(1_000_000):
            tag = f"{prefix}-{n}" if k == 0 else f"{prefix}-{n}.{k}"
            if low <= key_slot(("{" + tag + "}").encode()) < high:
                tags.append(tag)
                break
        else:  # pragma: no cover  (crc16 covers every range long before)
            raise ConfigurationError(f"no hash tag found for partition {n}")
    return tags


def partition_of(message: Message, partitions: int) -> int:
    return zlib.crc32(message.identifier.encode("utf-8", "surrogatepass")) % partitions


class RedisClusterOutbox(Outbox):
    """Durable outbox over a Redis Cluster, ``partitions`` Redis queues spread over slots.

    ``url`` is ``redis://host:port`` of any node (``rediss://`` for TLS); the other options
    are ``RedisOutbox``'s, applied to each partition.
    """

    durable = True

    def __init__(self, url: str, *, partitions: int = 16, prefix: str = "opencdp",
                 durability: str = "durable", socket_timeout: float = 5.0,
                 put_timeout: float | None = None, replicas: int = 1,
                 logger: logging.Logger | None = None) -> None:
        if isinstance(partitions, bool) or not isinstance(partitions, int) or \
                not 1 <= partitions <= 1024:
            raise ConfigurationError(f"partitions must be a whole number in [1, 1024], "
                                     f"got {partitions!r}")
        if not prefix or any(c in prefix for c in "{} \t\n"):
            raise ConfigurationError(f"invalid Redis key prefix {prefix!r}")
        self.partitions = partitions
        self.prefix = prefix
        self.durability = durability
        self._log = logger or _log
        self._url = url
        self._options: dict[str, Any] = {
            "durability": durability, "socket_timeout": socket_timeout,
            "put_timeout": put_timeout, "replicas": replicas, "logger": self._log}
        timeout = min(socket_timeout, put_timeout or socket_timeout, 1.0)
        try:
            # One retry (after a refreshed map), no backoff: the callers here bound their waits.
            self._cluster: Any = RedisCluster.from_url(
                url, socket_timeout=max(timeout, 0.2), socket_connect_timeout=max(timeout, 0.2),
                retry=Retry(NoBackoff(), 1))
        except (ValueError, redis.exceptions.RedisError) as exc:
            raise OutboxError(f"the Redis Cluster at {_safe(url)} could not be reached: "
                              f"{type(exc).__name__}: {exc}") from None
        self._tags = list(partition_tags(prefix, partitions))
        self._registry = "{" + prefix + "}:readers"
        self._layout = "{" + prefix + "}:layout"
        self._remapped = -math.inf
        self._remapping = threading.Lock()
        self._parts: list[RedisOutbox] = []
        self._closed = False
        self._renew = self._cluster.register_script(_RENEW)
        self._release = self._cluster.register_script(_RELEASE)
        self._reset_ownership()
        try:
            self._check_layout()
            for tag in self._tags:
                self._parts.append(RedisOutbox(self._node_url(tag), prefix=tag,
                                               **self._options))
        except BaseException:
            self.close()
            raise
        _instances.add(self)

    def _reset_ownership(self) -> None:
        """Fresh in a forked child too: the parent's partitions are the parent's."""
        self.reader = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._owned: list[int] = []
        self._reading = False
        self._balanced = -math.inf
        self._balancing = threading.Lock()
        self._where: dict[int, dict[int, int]] = {
            r.bit: {} for r in registry.registrations()}
        self._mask = registry.mask()
        self._deferred: dict[tuple[str, int], list[int]] = {}
        self._groups: dict[str, GroupCommit[tuple[int, bytes, int]]] = {}
        self._turn = 0

    def __repr__(self) -> str:
        return (f"RedisClusterOutbox(prefix={self.prefix!r}, partitions={self.partitions}, "
                f"durability={self.durability!r})")

    # nodes ------------------------------------------------------------------------------
    def _node_url(self, tag: str) -> str:
        node = self._cluster.get_node_from_key("{" + tag + "}:stream")
        if node is None:
            raise OutboxError(f"no Redis Cluster node serves the slot of {tag!r}")
        parts = urlsplit(self._url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{node.host}:{node.port}" if auth else f"{node.host}:{node.port}"
        scheme = "rediss" if parts.scheme.startswith("rediss") else "redis"
        return urlunsplit((scheme, netloc, "/0", "", ""))

    def _check_layout(self) -> None:
        try:
            self._cluster.set(self._layout, str(self.partitions), nx=True)
            recorded = self._cluster.get(self._layout)
        except redis.exceptions.RedisError as exc:
            raise OutboxError(f"the Redis Cluster at {_safe(self._url)} failed: "
                              f"{type(exc).__name__}: {exc}") from None
        if recorded is not None and int(recorded) != self.partitions:
            raise ConfigurationError(
                f"OCDP391 the cluster queue {self.prefix!r} was created with "
                f"partitions={int(recorded)}, not {self.partitions}: a different number would "
                "send people's calls to other streams than the ones already holding their "
                "messages; open it with the recorded number")

    def _remap(self, index: int) -> None:
        """A call of partition ``index`` failed: ask the cluster where every partition's
        slot lives now and follow the ones that moved (a dead master's partitions all
        moved, not only the one that noticed)."""
        now = clock.monotonic()
        if now - self._remapped < _REMAP_EVERY or not self._remapping.acquire(blocking=False):
            return
        try:
            self._remapped = now
            try:
                self._cluster.nodes_manager.initialize()
                urls = [self._node_url(tag) for tag in self._tags]
            except (OpenCDPError, redis.exceptions.RedisError, OSError):
                return  # the map is not settled yet: the next failure asks again
            for n, (part, url) in enumerate(zip(self._parts, urls, strict=False)):
                if url != part._url:
                    self._log.warning(
                        "[CDP] OCDP392 the Redis Cluster moved partition %s of the queue %r "
                        "to %s (a failover or a resharding); following it", n, self.prefix,
                        _safe(url))
                    part.repoint(url)
        finally:
            self._remapping.release()

    def _each(self, index: int, call: Any, *args: Any) -> Any:
        """``call`` on partition ``index``; when it fails because the partition moved, once
        more on the node it moved to. Every call here is safe to send twice (the scripts act
        only on what they still hold) except a put the old node may have stored: a
        ``MaybeStoredError`` is left to the spill, which writes it unless stored."""
        part = self._parts[index]
        before = part._url
        try:
            return call(*args)
        except MaybeStoredError:
            self._remap(index)
            raise
        except OpenCDPError:
            self._remap(index)
            if part._url == before:
                raise
        return call(*args)

    # caller's thread --------------------------------------------------------------------
    def _part(self, message: Message) -> int:
        return partition_of(message, self.partitions)

    def put(self, message: Message) -> None:
        index = self._part(message)
        dests = message.destinations & self._mask
        if self.durability == "batched" or not dests:
            self._each(index, self._parts[index].put, message)
            return
        row = (index, dumps_message(message), dests)
        part = self._parts[index]
        before = part._url
        try:
            self._node_group(index).commit(row)
        except MaybeStoredError:
            self._remap(index)
            raise
        except OpenCDPError:
            self._remap(index)
            if part._url == before:
                raise
            self._node_group(index).commit(row)  # not sent: the partition moved meanwhile

    def put_soon(self, message: Message, done: Done) -> bool:
        index = self._part(message)
        dests = message.destinations & self._mask
        if self.durability == "batched" or not dests:
            return self._parts[index].put_soon(message, done)
        if self._closed:
            raise OutboxError("the Redis outbox is closed")

        def answered(error: BaseException | None) -> None:
            if error is not None:
                self._remap(index)
            done(error)

        self._node_group(index).submit((index, dumps_message(message), dests), answered)
        return True

    # one group commit per node ----------------------------------------------------------
    def _node_group(self, index: int) -> GroupCommit[tuple[int, bytes, int]]:
        """Puts for every partition on one node share its round trips: spread over sixteen
        partitions, one process's puts would otherwise go one per round trip (measured: a
        quarter of the rate of one partition)."""
        url = self._parts[index]._url
        group = self._groups.get(url)
        if group is None:
            group = GroupCommit(functools.partial(self._write_node, url),
                                wait=self._parts[index]._group.wait,
                                name="opencdp-cluster-commit")
            self._groups[url] = group
        return group

    def _write_node(self, url: str, rows: Sequence[tuple[int, bytes, int]]
                    ) -> list[OpenCDPError | None]:
        """One pipeline to the node at ``url``: one put-many script per partition (a script
        touches one slot), then ``WAIT`` once; each partition's rows get its script's fate."""
        fates: list[OpenCDPError | None] = [None] * len(rows)
        by: dict[int, list[int]] = {}
        for k, row in enumerate(rows):
            by.setdefault(row[0], []).append(k)
        here = [i for i in by if self._parts[i]._url == url]
        for index in set(by) - set(here):
            moved = OutboxError(f"partition {index} moved to another node; not sent")
            for k in by[index]:
                fates[k] = moved
        if not here:
            return fates
        sender = self._parts[here[0]]
        order = [(index, by[index], self._parts[index]) for index in here]

        def send(which: list[tuple[int, list[int], RedisOutbox]]) -> tuple[list[Any], bool]:
            pipe = sender._put_redis.pipeline(transaction=False)
            for _index, ks, part in which:
                pipe.evalsha(part.put_many_script.sha, 2, *part.many_keys,
                             *part.many_args([(rows[k][1], rows[k][2]) for k in ks]))
            waited = sender._wait_in(pipe)
            with sender._errors():
                replies = pipe.execute(raise_on_error=False)
            return replies, waited

        replies, waited = send(order)
        unloaded = [n for n, r in enumerate(replies[:len(order)])
                    if isinstance(r, redis.exceptions.NoScriptError)]
        if unloaded:  # not run: load the script and send those again
            with sender._errors():
                sender._put_redis.script_load(sender.put_many_script.script)
            again, waited = send([order[n] for n in unloaded])
            for n, reply in zip(unloaded, again, strict=False):
                replies[n] = reply
            if waited:
                replies[-1] = again[-1]
        for (_index, ks, part), reply in zip(order, replies, strict=False):
            if isinstance(reply, BaseException):
                error = OutboxError(part._scrub(f"the Redis outbox failed: {_describe(reply)}"))
                for k in ks:
                    fates[k] = error
        if waited:
            acked = replies[-1]
            if isinstance(acked, BaseException) or int(acked) < sender.replicas:
                for _index, _ks, part in order:
                    part._unwaited_until = clock.monotonic() + _UNWAITED
                self._log.warning(
                    "[CDP] OCDP390 the Redis node of %s did not confirm a write on %d "
                    "replica(s) within %d ms (%s); writes there are not waited for during "
                    "%g s, so a failover meanwhile can lose the last of them",
                    sender._stream, sender.replicas, sender._replica_wait_ms, acked, _UNWAITED)
        return fates

    def put_many(self, messages: Sequence[Message]) -> None:
        groups: dict[int, list[Message]] = {}
        for message in messages:
            groups.setdefault(self._part(message), []).append(message)
        for index, group in groups.items():
            self._each(index, self._parts[index].put_many, group)

    def put_unless_stored(self, message: Message, since: float) -> None:
        index = self._part(message)
        self._each(index, self._parts[index].put_unless_stored, message, since)

    def flush(self) -> None:
        for part in self._parts:
            part.flush()

    def pending_messages(self) -> int:
        return sum(part.pending_messages() for part in self._parts)

    def shared_state(self) -> tuple[Any, str] | None:
        """The first partition's: the guard and the buckets keep their keys in one slot,
        on a plain connection bounded like a put's."""
        return self._parts[0].shared_state()

    # ownership ------------------------------------------------------------------------
    def _balance(self, force: bool = False) -> None:
        """Renew what this reader owns, then take or give partitions toward its share."""
        if not force and clock.monotonic() - self._balanced < _BALANCE_EVERY:
            return
        if not self._balancing.acquire(blocking=False):
            return
        try:
            self._balanced = clock.monotonic()
            ttl = int(_OWN_SECONDS * 1000)
            now_ms = int(clock.wall() * 1000)
            pipe = self._cluster.pipeline()
            pipe.zadd(self._registry, {self.reader: now_ms + ttl})
            pipe.zremrangebyscore(self._registry, "-inf", now_ms)
            pipe.zrange(self._registry, 0, -1)
            readers = sorted(r.decode() if isinstance(r, bytes) else str(r)
                             for r in pipe.execute()[-1])
            if self.reader not in readers:
                readers = sorted([*readers, self.reader])
            share = math.ceil(self.partitions / len(readers))
            kept = [i for i in self._owned
                    if self._renew(keys=[self._owner_key(i)], args=[self.reader, ttl])]
            for index in kept[share:]:
                self._release(keys=[self._owner_key(index)], args=[self.reader])
            kept = kept[:share]
            if len(kept) < share:
                rank = readers.index(self.reader)
                order = sorted(range(self.partitions),
                               key=lambda i: ((i - rank) % len(readers) != 0, i))
                for index in order:
                    if len(kept) >= share:
                        break
                    if index not in kept and self._cluster.set(
                            self._owner_key(index), self.reader, nx=True, px=ttl):
                        kept.append(index)
            self._owned = sorted(kept)
        except (redis.exceptions.RedisError, OSError) as exc:
            # Keep what we hold: at worst another reader takes it after _OWN_SECONDS.
            self._log.warning("[CDP] OCDP393 could not renew or share the partitions of the "
                              "cluster queue %r: %s: %s", self.prefix, type(exc).__name__, exc)
        finally:
            self._balancing.release()

    def _owner_key(self, index: int) -> str:
        return "{" + self._tags[index] + "}:owner"

    def owned(self) -> list[int]:
        """The partitions this process leases from (after its last balance)."""
        return list(self._owned)

    def _mine(self) -> list[int]:
        if not self._reading:
            self._reading = True
            self._balance(force=True)
        else:
            self._balance()
        owned = self._owned
        if not owned:
            return []
        self._turn = (self._turn + 1) % len(owned)
        return owned[self._turn:] + owned[:self._turn]

    # dispatcher's thread ----------------------------------------------------------------
    def lease(self, destination: str, limit: int, now: float, lease_seconds: float
              ) -> list[Leased]:
        bit = _bit(destination)
        where = self._where[bit]
        if self._deferred:
            self._resend_acks()
        out: list[Leased] = []
        failure: OpenCDPError | None = None
        for index in self._mine():
            if len(out) >= limit:
                break
            try:
                got = self._each(index, self._parts[index].lease, destination,
                                 limit - len(out), now, lease_seconds)
            except OpenCDPError as exc:
                failure = exc
                continue
            for item in got:
                where[item.message.id] = index
            out.extend(got)
        if failure is not None and not out:
            raise failure
        return out

    def _by_part(self, bit: int, ids: Sequence[int]) -> dict[int, list[int]]:
        where = self._where[bit]
        groups: dict[int, list[int]] = {}
        for i in ids:
            index = where.pop(i, None)
            if index is not None:
                groups.setdefault(index, []).append(i)
        return groups

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        """An acknowledgement its node cannot take now (a master died and its replica is not
        promoted yet: seconds) is kept and sent again at the next lease or maintenance,
        rather than failing: failed, the lane would hand the delivered messages out again,
        and Customer.io would get them twice. Leases (``lease_seconds``, 30 s for workers'
        default timeout) outlast a failover, so the acknowledgement lands before anyone
        may claim them. A process killed meanwhile leaves them to be delivered again."""
        bit = _bit(destination)
        self._resend_acks()
        for index, group in self._by_part(bit, ids).items():
            try:
                self._each(index, self._parts[index].ack, destination, group)
            except OpenCDPError as exc:
                self._deferred.setdefault((destination, index), []).extend(group)
                self._log.warning(
                    "[CDP] OCDP394 %d acknowledgement(s) for partition %s of the cluster queue "
                    "%r wait for its node (%s); sent again at the next lease", len(group),
                    index, self.prefix, exc)

    def _resend_acks(self) -> None:
        for (destination, index), ids in list(self._deferred.items()):
            try:
                self._each(index, self._parts[index].ack, destination, ids)
            except OpenCDPError:
                continue
            self._deferred.pop((destination, index), None)

    def retry(self, destination: str, items: Sequence[RetryItem]) -> None:
        groups = self._by_part(_bit(destination), [item.id for item in items])
        for index, ids in groups.items():
            wanted = set(ids)
            self._each(index, self._parts[index].retry, destination,
                       [item for item in items if item.id in wanted])

    def dead(self, destination: str, items: Sequence[DeadItem], now: float) -> None:
        groups = self._by_part(_bit(destination), [item.id for item in items])
        for index, ids in groups.items():
            wanted = set(ids)
            self._each(index, self._parts[index].dead, destination,
                       [item for item in items if item.id in wanted], now)

    def next_due(self, destination: str, now: float) -> float | None:
        due: float | None = None
        for index in self._mine():
            try:
                at = self._each(index, self._parts[index].next_due, destination, now)
            except OpenCDPError:
                at = now + _REMAP_EVERY  # down or moving: look again shortly
            if at is not None and (due is None or at < due):
                due = at
                if due <= now:
                    return now
        return due

    def maintain(self, now: float) -> None:
        if self._deferred:
            self._resend_acks()
        for index, part in enumerate(self._parts):
            try:
                part.maintain(now)
            except OpenCDPError:
                self._remap(index)
        if self._reading:
            self._balance()

    def after_fork(self) -> None:
        for part in self._parts:
            part.after_fork()
        self._reset_ownership()

    # inspection -------------------------------------------------------------------------
    def stats(self, now: float) -> dict[str, QueueStats]:
        out = {name: QueueStats() for name in registry.names()}
        for index, part in enumerate(self._parts):
            for name, one in self._each(index, part.stats, now).items():
                total = out[name]
                total.pending += one.pending
                total.in_flight += one.in_flight
                total.in_flight_here += one.in_flight_here
                total.dead += one.dead
                total.delivered += one.delivered
                if one.oldest_pending_age is not None:
                    total.oldest_pending_age = max(total.oldest_pending_age or 0.0,
                                                   one.oldest_pending_age)
                for reason, n in one.dropped.items():
                    total.dropped[reason] = total.dropped.get(reason, 0) + n
        return out

    def dead_letters(self, destination: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[DeadLetter]:
        letters = [d for part in self._parts
                   for d in part.dead_letters(destination, since, limit)]
        letters.sort(key=lambda d: d.dead_at, reverse=True)
        return letters[:limit]

    def dead_letter(self, message_id: int) -> list[DeadLetter]:
        return [d for part in self._parts for d in part.dead_letter(message_id)]

    def replay(self, destination: str | None = None, since: float | None = None) -> int:
        return sum(part.replay(destination, since) for part in self._parts)

    def purge(self, destination: str | None = None, since: float | None = None,
              before: float | None = None) -> int:
        return sum(part.purge(destination, since, before) for part in self._parts)

    def trim(self) -> int:
        return sum(part.trim() for part in self._parts)

    # the hold mark: one per queue, kept with the first partition ---------------------------
    def hold_mark(self, destination: str) -> HoldMark | None:
        return self._parts[0].hold_mark(destination)

    def set_hold_mark(self, destination: str, state: str, now: float,
                      expect: tuple[str | None, ...]) -> HoldMark | None:
        return self._parts[0].set_hold_mark(destination, state, now, expect)

    def purge_pending(self, destination: str, before: float | None, now: float) -> int:
        return sum(part.purge_pending(destination, before, now) for part in self._parts)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _instances.discard(self)
        if self._deferred:
            self._resend_acks()
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            for index in self._owned:
                self._release(keys=[self._owner_key(index)], args=[self.reader])
            if self._reading:
                self._cluster.zrem(self._registry, self.reader)
        self._owned = []
        for group in self._groups.values():
            group.close()
        for part in self._parts:
            part.close()
        with contextlib.suppress(Exception):
            self._cluster.close()

    def __enter__(self) -> RedisClusterOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _safe(url: str) -> str:
    from .url import safe_url

    return safe_url(url)
