"""The test support shipped to users: capture mode and a sandbox client without backoff."""

from __future__ import annotations

from typing import Any

from opencdp.testing import capture, sandbox_client


def test_capture_records_validated_calls_without_sending() -> None:
    cap = capture()
    cap.client.identify("u1", {"email": "u1@example.com"})
    cap.client.track("u1", "signed_up", {"plan": "pro"}, timestamp=1_700_000_000)
    kinds = [(m.kind, m.name) for m in cap.messages]
    assert kinds == [("identify", None), ("track", "signed_up")]
    assert cap.messages[1].timestamp == 1_700_000_000
    assert cap.messages[1].destinations == ("opencdp",)
    cap.clear()
    assert cap.messages == []
    cap.client.close(timeout=1)


def test_sandbox_client_delivers_with_no_backoff(sandbox: Any) -> None:
    sandbox.set_faults({"customerio": {"error_rate": 0.5, "statuses": [500], "seed": 3}})
    client = sandbox_client(sandbox)
    for i in range(10):
        client.track("u1", "page_viewed", {"i": i})
        assert client.flush(timeout=10)
    assert len(sandbox.person("customerio", "u1")["events"]) == 10
    client.close(timeout=2)
