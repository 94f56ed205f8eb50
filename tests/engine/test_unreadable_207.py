"""A 207 from /api/v2/batch that cannot be read is never a success: the batch is retried."""

from __future__ import annotations

import logging
from collections import Counter

import orjson
import pytest

from opencdp.config import RetryConfig
from opencdp.destinations.base import Request, Response

REFUSED = {17, 401}
UNREADABLE = [b"<html><body>207 Multi-Status</body></html>", b"", b"[]", b'{"errors": []}',
              b'{"errors": [{"reason": "invalid"}]}', b'{"errors": [{"batch_index": "3"}]}',
              b'{"errors": [{"batch_index": -1}]}']
OUT_OF_RANGE = b'{"errors": [{"batch_index": 600}]}'
"""Unreadable too, though only the batch can tell: retried, and logged only if it stays so."""


def _named(request: Request) -> Response:
    ops = orjson.loads(request.body or b"")["batch"]
    errors = [{"batch_index": i, "reason": "invalid", "field": "name", "message": "bad"}
              for i, op in enumerate(ops) if op["attributes"]["n"] in REFUSED]
    return Response(207, orjson.dumps({"errors": errors}), {}) if errors else \
        Response(200, b"{}", {})


@pytest.mark.parametrize("garbage", [*UNREADABLE, OUT_OF_RANGE])
def test_an_unreadable_207_is_retried_then_the_refused_ones_dead_lettered(
    engine_client, recorder, caplog, garbage: bytes
) -> None:
    answered: list[int] = []

    def handler(request: Request) -> Response:
        if request.path != "/api/v2/batch":
            return Response(200, b"{}", {})
        answered.append(len(request.items))
        return Response(207, garbage, {}) if len(answered) == 1 else _named(request)

    recorder.handler = handler
    client = engine_client(batch_size=600, start_worker=False)
    for i in range(600):
        client.track("u1", "Viewed", {"n": i})
    client.engine.dispatcher.start()
    with caplog.at_level(logging.ERROR, logger="opencdp"):
        assert client.flush(10)
    assert answered[0] == 600 and sum(answered[1:]) == 600  # every one sent again, once
    health = client.health().destinations["customerio"]
    assert health.delivered == 598
    letters = client.dead_letters("customerio")
    assert sorted((d.message.data or {})["n"] for d in letters) == sorted(REFUSED)
    assert client.last_flush is not None
    assert client.last_flush.delivered == {"opencdp": 600, "customerio": 598}
    logged = sum("OCDP336" in r.getMessage() for r in caplog.records)
    assert logged == (0 if garbage == OUT_OF_RANGE else 1)


def test_a_207_that_stays_unreadable_ends_in_dead_letters_with_the_reason(
    engine_client, recorder
) -> None:
    def handler(request: Request) -> Response:
        if request.path == "/api/v2/batch":
            return Response(207, b"<html>oops</html>", {})
        return Response(200, b"{}", {})

    recorder.handler = handler
    client = engine_client(batch_size=600, start_worker=False,
                           retry=RetryConfig(base_delay=0.001, max_delay=0.01, max_attempts=3))
    for i in range(600):
        client.track("u1", "Viewed", {"n": i})
    client.engine.dispatcher.start()
    assert client.flush(10)
    sent = Counter(op["attributes"]["n"] for r in recorder.to("track")
                   if r.path == "/api/v2/batch" for op in orjson.loads(r.body or b"")["batch"])
    assert sent == dict.fromkeys(range(600), 3)  # max_attempts, then dead
    assert client.health().destinations["customerio"].delivered == 0
    letters = client.dead_letters("customerio", limit=1000)
    assert len(letters) == 600
    assert all("OCDP336" in d.reason for d in letters)


@pytest.mark.parametrize("garbage", [*UNREADABLE, OUT_OF_RANGE])
def test_classify_retries_the_whole_batch_on_an_unreadable_207(garbage: bytes) -> None:
    from opencdp.destinations import customerio as cio
    from opencdp.destinations.base import Retry
    from opencdp.message import Message, new_ulid
    from opencdp.outbox.base import Leased

    items = [Leased(Message(new_ulid(), "track", "u1", "viewed", {"n": i}, None, 3))
             for i in range(600)]
    (request,), _ = cio.encode(items)
    (outcome,) = cio.classify(request, Response(207, garbage, {}), 0.0)
    assert isinstance(outcome, Retry) and outcome.items == items and outcome.status == 207
    assert outcome.reason.startswith("OCDP336")
