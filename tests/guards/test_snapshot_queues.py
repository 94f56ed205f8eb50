"""The snapshot end to end: the same calls through the memory, SQLite and Redis queues store
identical data on both platforms, equal to the documented normalisation, whatever the caller
does to its dicts after the call."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from opencdp import Client, ValidationError
from opencdp.testing import sandbox_options


class Plan(enum.Enum):
    PRO = "pro"


EXPECTED_ATTRIBUTES = {
    "email": "ada@example.com",
    "created_at": 1717243200,
    "trial_ends": "2024-07-01",
    "plan": "pro",
    "ref": "00000000-0000-0000-0000-00000000002a",
    "balance": 12.5,
    "address": {"city": "Oslo", "lines": ["Storgata 1"]},
    "tags": ["a", "b"],
}
EXPECTED_PROPERTIES = {"total": 9.99, "placed_at": 1717243200,
                       "items": [{"sku": "A1", "qty": 2}]}


def _calls(client: Client) -> None:
    address = {"city": "Oslo", "lines": ["Storgata 1"]}
    attributes: dict[str, Any] = {
        "email": "ada@example.com",
        "created_at": datetime(2024, 6, 1, 12, tzinfo=timezone.utc),
        "trial_ends": date(2024, 7, 1), "plan": Plan.PRO, "ref": uuid.UUID(int=42),
        "balance": Decimal("12.50"), "address": address, "tags": ("a", "b"),
    }
    client.identify("snap-1", attributes)
    items = [{"sku": "A1", "qty": 2}]
    properties = {"total": Decimal("9.99"), "placed_at": datetime(2024, 6, 1, 12,
                                                                  tzinfo=timezone.utc),
                  "items": items}
    for _ in range(3):
        client.track("snap-1", "order_placed", properties)
    # The caller reuses its objects: nothing queued may change.
    address["city"] = "Bergen"
    address["lines"].append("changed")  # type: ignore[attr-defined]
    items.append({"sku": "B2", "qty": 1})
    items[0]["qty"] = 99
    properties["total"] = Decimal("0.01")


@pytest.fixture
def stored(sandbox: Any) -> Iterator[Any]:
    def run(queue: str) -> dict[str, bytes]:
        sandbox.reset()
        client = Client(**sandbox_options(sandbox, queue=queue))
        try:
            _calls(client)
            assert client.flush(timeout=20)
        finally:
            client.close(timeout=2)
        result = {}
        for service in ("opencdp", "customerio"):
            person = sandbox.person(service, "snap-1")
            assert person is not None, service
            events = [(e["name"], e["data"]) for e in person["events"]]
            result[service] = orjson.dumps([person["attributes"], events],
                                           option=orjson.OPT_SORT_KEYS)
        return result

    yield run


def test_every_queue_stores_the_same_bytes_on_both_platforms(
        stored: Any, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    queues = ["memory", f"sqlite:///{tmp_path / 'outbox.db'}"]
    try:
        base = request.getfixturevalue("redis_url").rstrip("/")
        queues.append(f"{base}?prefix=snap{abs(hash(str(tmp_path))) % 10**9}")
    except pytest.skip.Exception:
        pass
    results = {queue.split(":")[0]: stored(queue) for queue in queues}
    first = next(iter(results.values()))
    for name, result in results.items():
        assert result == first, name
    for service in ("opencdp", "customerio"):
        attributes, events = orjson.loads(first[service])
        for key, value in EXPECTED_ATTRIBUTES.items():
            assert attributes[key] == value, (service, key)
        assert events == [["order_placed", EXPECTED_PROPERTIES]] * 3, service


def test_a_value_no_encoder_takes_is_refused_at_the_call_with_every_queue(
        sandbox: Any, tmp_path: Path) -> None:
    for queue in ("memory", f"sqlite:///{tmp_path / 'refuse.db'}"):
        client = Client(**sandbox_options(sandbox, queue=queue))
        try:
            for bad, field in (({"name": "caf\udce9"}, "properties.name"),
                               ({"n": {"k": b"x"}}, "properties.n.k")):
                with pytest.raises(ValidationError) as err:
                    client.track("snap-2", "file_uploaded", bad)
                assert err.value.field == field
            client.track("snap-2", "file_uploaded", {"name": "café"})
            assert client.flush(timeout=20)
        finally:
            client.close(timeout=2)
        for service in ("opencdp", "customerio"):
            person = sandbox.person(service, "snap-2")
            assert person is not None
            assert [e["data"] for e in person["events"]][-1] == {"name": "café"}
