"""HTTP for the dispatcher: one pooled ``aiohttp.ClientSession`` per service, errors converted here.

The one thing this layer decides besides plumbing is the kind of failure, because it tells
whether the server may have received the request: a connect error or connect timeout means it
never left (safe to try another host, even for a transactional send); a read timeout or a
dropped connection means it may have arrived (never resend a transactional message).
Redirects are never followed, for the same reason.

Why aiohttp rather than httpx: the gateway lane keeps up to 30 requests in flight, one per
message, and httpx's connection pool does work proportional to its connections on every
request. Measured in one run against the sandbox with 20 ms injected latency and 30
concurrent requests (``bench/throughput.py`` shape): one pooled httpx client 90 req/s,
30 single-connection httpx clients 327 req/s, aiohttp 800 req/s. The interface below is
transport-neutral (``Request`` in, ``Response`` or ``Failure`` out), so it can be swapped.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Literal

import aiohttp

from ._version import __version__
from .config import ClientConfig
from .destinations import opencdp as gateway
from .destinations.base import Failure, Request, Response
from .destinations.customerio import basic_auth

__all__ = ["Transport"]

Failover = Literal["retryable", "send_safe"]
_LOG = logging.getLogger("opencdp")


def _failure(exc: BaseException) -> Failure:
    name = type(exc).__name__
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return Failure(f"{name}: connection not established", maybe_received=False)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return Failure(f"{name}: no answer in time", maybe_received=True)
    return Failure(f"{name}: {str(exc)[:120]}", maybe_received=True)


class Transport:
    """Sessions are created lazily on the dispatcher's loop (aiohttp binds them to it)."""

    def __init__(self, config: ClientConfig, debug: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._debug = debug or _LOG.debug
        self.gateway_hosts = config.cdp_hosts
        agent = f"opencdp-python/{__version__}"
        self._headers: dict[str, dict[str, str]] = {
            "gateway": {"Authorization": config.cdp_api_key},
        }
        self._bases = {"gateway": self.gateway_hosts[0]}
        cio = config.customer_io
        if cio is not None:
            self._headers["track"] = {"Authorization": basic_auth(cio.site_id, cio.api_key)}
            self._bases["track"] = cio.track_url
        for headers in self._headers.values():
            headers.update({"Content-Type": "application/json", "User-Agent": agent})
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._timeout = aiohttp.ClientTimeout(
            total=config.timeout, sock_connect=min(config.timeout, 5.0)
        )

    def _session(self, service: str) -> aiohttp.ClientSession:
        session = self._sessions.get(service)
        if session is None:
            ssl_context: ssl.SSLContext | bool = True
            if self.config.tls_ca_file:
                ssl_context = ssl.create_default_context(cafile=self.config.tls_ca_file)
            limit = self.config.max_concurrent_requests * (2 if service == "gateway" else 1)
            session = aiohttp.ClientSession(
                headers=self._headers[service],
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=limit, ssl=ssl_context),
                trust_env=False,
                auto_decompress=True,
            )
            self._sessions[service] = session
        return session

    async def _once(self, service: str, base: str, request: Request) -> Response | Failure:
        try:
            async with self._session(service).request(
                request.method, base + request.path, data=request.body,
                headers=request.headers or None, allow_redirects=False,
            ) as response:
                body = await response.read()
                return Response(
                    response.status, body,
                    {k.lower(): v for k, v in response.headers.items()}, base,
                )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return _failure(exc)

    async def send(self, request: Request, failover: Failover = "retryable") -> Response | Failure:
        """One exchange. Gateway requests walk the host list: on a failure or a retryable
        status (``retryable``), or only when the request provably never arrived
        (``send_safe``, for transactional sends)."""
        if request.service != "gateway":
            return await self._once(request.service, self._bases[request.service], request)
        result: Response | Failure = Failure("no gateway host configured", maybe_received=False)
        hosts = self.gateway_hosts
        for index, host in enumerate(hosts):
            result = await self._once("gateway", host, request)
            last = index == len(hosts) - 1
            if isinstance(result, Response):
                if 200 <= result.status < 300 or last:
                    return result
                go_on = (
                    gateway.send_failover_allowed(result)
                    if failover == "send_safe"
                    else result.status >= 500 or result.status in (408, 429)
                )
                if not go_on:
                    return result
                self._debug(f"[CDP] Gateway {host} returned {result.status}, trying next host")
            else:
                if last or (failover == "send_safe" and result.maybe_received):
                    return result
                self._debug(f"[CDP] Gateway {host} unreachable: {result.reason}")
        return result

    async def aclose(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
