"""Values the SDK refuses are refused by the relay too: never stored as something else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opencdp.server import RelayServer

BIG = "123456789012345678901234567890"


def _with_big(template: str) -> str:
    return template.replace("BIG", BIG)


def _raw(gateway: httpx.Client, path: str, body: str) -> httpx.Response:
    return gateway.post(path, content=body.encode(),
                        headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/persons/track",
     _with_big('{"identifier": "u1", "eventName": "paid", "properties": {"order_id": BIG}}'),
     "properties.order_id"),
    ("/v1/persons/track",
     _with_big('{"identifier": "u1", "eventName": "paid", "properties": {"a": {"b": [1, -BIG]}}}'),
     "properties.a.b[1]"),
    ("/v1/persons/identify", '{"identifier": "u1", "properties": {"n": 18446744073709551616}}',
     "properties.n"),
    ("/v1/persons/identify", '{"identifier": "u1", "properties": {"n": -9223372036854775809}}',
     "properties.n"),
    ("/v1/persons/registerDevice",
     _with_big('{"identifier": "u1", "deviceId": "d1", "platform": "ios", "apnToken": "t",'
               ' "attributes": {"n": BIG}}'), "attributes.n"),
    ("/v1/send/email",
     _with_big('{"to": "ada@example.com", "identifiers": {"id": "u1"}, '
               '"transactional_message_id": "W", "message_data": {"order_id": BIG}}'),
     "message_data.order_id"),
])
def test_an_integer_beyond_64_bits_is_refused_with_its_path_and_nothing_stored(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any, path: str, body: str, field: str
) -> None:
    answer = _raw(gateway, path, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["message"].startswith(f"OCDP132 {field} is an int outside 64 bits")
    client = relay.relay.client
    assert client is not None and client.flush(10)
    stats = sandbox.stats()
    for service in ("opencdp", "customerio"):
        assert stats[service]["people"] == 0
        assert stats[service]["events"] == 0
        assert stats[service]["sends"] == 0
        assert stats[service]["requests"] == 0


def test_the_64_bit_limits_and_long_digit_strings_still_arrive_exactly(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any
) -> None:
    body = ('{"identifier": "u1", "eventName": "paid", "properties": '
            '{"high": 18446744073709551615, "low": -9223372036854775808, "text": "BIG",'
            ' "small": 7}}').replace("BIG", BIG)
    assert _raw(gateway, "/v1/persons/track", body).status_code == 202
    client = relay.relay.client
    assert client is not None and client.flush(10)
    expected = {"high": 2**64 - 1, "low": -(2**63), "text": BIG, "small": 7}
    for service in ("opencdp", "customerio"):
        (event,) = sandbox.person(service, "u1")["events"]
        assert event["data"] == expected
