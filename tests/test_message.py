"""The envelope and its ULIDs."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencdp.message import Message, dumps_message, loads_message, new_ulid, parse_ulid, ulid_str


def test_ulids_are_unique_and_time_ordered() -> None:
    ids = [new_ulid() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    now_ms = time.time_ns() // 1_000_000
    assert abs((ids[-1] >> 80) - now_ms) < 5_000


def test_ulid_text_is_26_crockford_characters() -> None:
    text = ulid_str(new_ulid())
    assert len(text) == 26
    assert set(text) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_ulid_round_trip(value: int) -> None:
    assert parse_ulid(ulid_str(value)) == value


@pytest.mark.parametrize("bad", ["", "short", "0" * 25 + "U", "8" + "0" * 25])
def test_parse_ulid_refuses_bad_text(bad: str) -> None:
    with pytest.raises(ValueError, match="ULID"):
        parse_ulid(bad)


def test_forked_child_gets_distinct_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read)
        os.write(write, ulid_str(new_ulid()).encode())
        os._exit(0)
    os.close(write)
    child = parse_ulid(os.read(read, 64).decode())
    os.waitpid(pid, 0)
    parent = new_ulid()
    assert child & ((1 << 80) - 1) != parent & ((1 << 80) - 1)


def test_message_serialises_and_derives_its_timestamp() -> None:
    mid = new_ulid()
    message = Message(mid, "track", "user_1", "signed_up", {"plan": "pro"}, None, 3)
    again = loads_message(dumps_message(message))
    assert again == message
    assert message.timestamp == (mid >> 80) // 1000
    assert message._replace(ts=1_700_000_000).timestamp == 1_700_000_000


def test_ulid_text_round_trips_for_any_128_bit_value_in_any_order() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from opencdp.message import parse_ulid, ulid_str

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(st.integers(0, (1 << 128) - 1), min_size=1, max_size=5))
    def check(values: list[int]) -> None:
        for value in values:  # consecutive values share the cached head, or do not
            text = ulid_str(value)
            assert len(text) == 26 and parse_ulid(text) == value
            assert ulid_str(value + 1 if value + 1 < 1 << 128 else 0) != text

    check()
