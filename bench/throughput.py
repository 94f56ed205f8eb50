"""Delivery throughput into the sandbox, next to the official clients, in one run.

customerio  events/s delivered into the Customer.io emulation, which enforces 100 req/s
            (target >= 50,000), vs the official ``customerio`` client (one request per event).
            Our OpenCDP lane is parked (its sandbox service is down) so the figure is the
            Customer.io lane alone: once with the calls queued before the clock starts (the
            lane's delivery rate, checked against the target), once with the calls made while
            it delivers (end to end in one process).
gateway     events/s through the OpenCDP lane with 20 ms injected latency and 30 concurrent
            requests (target >= 1,350), vs ``cdp-python-sdk`` driven by 30 coroutines, and
            bare aiohttp under the same load (the ceiling the transport allows).

The sandbox runs in its own process so it does not share our GIL.

    python -m bench.throughput [--events 100000] [--gateway-events 6000] [--peer-seconds 3]
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from opencdp import Client, CustomerIO
from opencdp.config import BreakerConfig
from opencdp.sandbox import Sandbox

PROPS = {"order_id": "A-1001", "total": 99.5, "currency": "USD", "items": 3, "sku": "sku-1"}


def _client(sandbox: Sandbox, **extra: Any) -> Client:
    options: dict[str, Any] = {
        "cdp_api_key": "cdp-test-key",
        "cdp_endpoint": sandbox.opencdp_url,
        "cdp_fallback_endpoints": [],
        "register_atexit": False,
        "max_queue_size": 2_000_000,
        "logger": logging.getLogger("bench.quiet"),
    }
    options.update(extra)
    return Client(**options)


def ours_customerio(sandbox: Sandbox, events: int, prefill: bool) -> float:
    """Events/s into the Customer.io emulation. ``prefill``: the calls are queued first and
    the clock starts with the worker (the lane's delivery rate); otherwise the calls are made
    while the worker delivers, in the same process (end to end, GIL shared)."""
    sandbox.reset()
    sandbox.set_faults({"opencdp": {"down": True, "down_status": 500}})
    client = _client(
        sandbox, send_to_customer_io=True,
        customer_io=CustomerIO("sandbox-site", "sandbox-track-key",
                               track_url=sandbox.track_url, app_url=sandbox.app_url),
        breaker=BreakerConfig(failure_threshold=1, reset_timeout=3600),
        start_worker=not prefill,
    )
    start = time.perf_counter()
    for i in range(events):
        client.track(f"user_{i % 1000}", "order_placed", PROPS)
    if prefill:
        client.engine.dispatcher.start()
        start = time.perf_counter()
    deadline = start + 120

    def delivered_now() -> int:
        return client.stats().lanes["customerio"].counters.delivered

    while delivered_now() < events and time.perf_counter() < deadline:
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    delivered = delivered_now()
    stored = sandbox.stats()["customerio"]["events"]
    client.close(timeout=1)
    sandbox.clear_faults()
    if stored < delivered:
        raise SystemExit(f"sandbox stored {stored} events but the client counted {delivered}")
    return delivered / elapsed


def peer_customerio(seconds: float) -> float:
    """The official client only speaks https, so it gets its own TLS sandbox."""
    from customerio import CustomerIO as Official
    from customerio import CustomerIOException

    # strict: Customer.io's documented 100 req/s, which the official client meets as 429s
    with Sandbox(port=0, tls=True, process=True, strict=True) as sandbox:
        host, port = sandbox.track_url.split("://", 1)[1].split(":")
        official = Official("sandbox-site", "sandbox-track-key", host=host, port=int(port))
        official.http.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        official.http.verify = sandbox.ca_file
        ok = 0
        i = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            try:
                official.track(customer_id=f"user_{i % 1000}", name="order_placed", data=PROPS)  # noqa: OCDP209
                ok += 1
            except CustomerIOException:
                pass  # 429 above the workspace limit: the official client does not retry it
            i += 1
        return ok / (time.perf_counter() - start)


def ours_gateway(sandbox: Sandbox, events: int) -> float:
    sandbox.reset()
    sandbox.set_faults({"opencdp": {"latency_ms": 20}})
    client = _client(sandbox, max_concurrent_requests=30)
    client.identify("warm", {"email": "w@example.com"})
    client.flush(5)
    start = time.perf_counter()
    for i in range(events):
        client.track(f"user_{i % 1000}", "order_placed", PROPS)
    drained = client.flush(timeout=120)
    elapsed = time.perf_counter() - start
    delivered = client.health().destinations["opencdp"].delivered - 1
    client.close(timeout=1)
    sandbox.clear_faults()
    if not drained:
        raise SystemExit("gateway benchmark did not drain")
    return delivered / elapsed


def peer_gateway(sandbox: Sandbox, seconds: float) -> float:
    """cdp-python-sdk's calls are coroutines; give it the same 30 requests in flight."""
    import asyncio

    from cdp_client import CDPClient, CDPConfig

    sandbox.reset()
    sandbox.set_faults({"opencdp": {"latency_ms": 20}})
    peer = CDPClient(CDPConfig(cdp_api_key="cdp-test-key", cdp_endpoint=sandbox.opencdp_url,
                               cdp_fallback_endpoints=[]))

    async def run() -> int:
        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await peer.track(f"user_{done % 1000}", "order_placed", PROPS)  # noqa: OCDP209
                done += 1

        await asyncio.gather(*(worker() for _ in range(30)))
        return done

    start = time.perf_counter()
    done = asyncio.run(run())
    rate = done / (time.perf_counter() - start)
    sandbox.clear_faults()
    return rate


def bare_aiohttp(sandbox: Sandbox, events: int) -> float:
    """The transport alone: aiohttp with 30 requests in flight, no engine (the ceiling)."""
    import asyncio

    import aiohttp
    import orjson

    sandbox.reset()
    sandbox.set_faults({"opencdp": {"latency_ms": 20}})
    body = orjson.dumps({"identifier": "user_1", "eventName": "order_placed",
                         "properties": PROPS})

    async def run() -> None:
        limit = asyncio.Semaphore(30)
        async with aiohttp.ClientSession(headers={"Authorization": "cdp-test-key"}) as session:
            async def one() -> None:
                async with limit, session.post(sandbox.opencdp_url + "/v1/persons/track",
                                               data=body) as response:
                    await response.read()

            await asyncio.gather(*(one() for _ in range(events)))

    start = time.perf_counter()
    asyncio.run(run())
    rate = events / (time.perf_counter() - start)
    sandbox.clear_faults()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--gateway-events", type=int, default=6_000)
    parser.add_argument("--peer-seconds", type=float, default=3.0)
    args = parser.parse_args()
    logging.getLogger("bench.quiet").setLevel(logging.CRITICAL)
    with Sandbox(port=0, process=True) as sandbox:
        cio_drain = ours_customerio(sandbox, args.events, prefill=True)
        cio_e2e = ours_customerio(sandbox, args.events, prefill=False)
        gw_ours = ours_gateway(sandbox, args.gateway_events)
        gw_bare = bare_aiohttp(sandbox, args.gateway_events)
        gw_peer = peer_gateway(sandbox, args.peer_seconds)
    cio_peer = peer_customerio(args.peer_seconds)
    rows = [
        ("Customer.io, delivery (queue filled)", cio_drain, cio_peer, "customerio", 50_000),
        ("Customer.io, end to end (calls + delivery)", cio_e2e, cio_peer, "customerio", None),
        ("OpenCDP gateway (20 ms, 30 in flight)", gw_ours, gw_peer, "cdp-python-sdk", 1_350),
        ("  bare aiohttp, same load (ceiling)", gw_bare, gw_peer, "cdp-python-sdk", None),
    ]
    print(f"{'scenario':<44}{'opencdp ev/s':>13}{'peer ev/s':>11}{'ratio':>9}  peer, target")
    for name, ours, peer, peer_name, target in rows:
        verdict = "" if target is None else (
            f", >= {target:,} {'MET' if ours >= target else 'NOT MET'}")
        print(f"{name:<44}{ours:>13,.0f}{peer:>11,.0f}{ours / peer:>8.1f}x  {peer_name}{verdict}")


if __name__ == "__main__":
    main()
