"""HTTP for the dispatcher: one pooled ``httpx.AsyncClient`` per service, errors converted here.

The one thing this layer decides besides plumbing is the kind of failure, because it tells
whether the server may have received the request: a connect error or connect timeout means it
never left (safe to try another host, even for a transactional send); a read timeout or a
dropped connection means it may have arrived (never resend a transactional message).
Redirects are never followed, for the same reason.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import Literal

import httpx

from ._version import __version__
from .config import ClientConfig
from .destinations import opencdp as gateway
from .destinations.base import Failure, Request, Response
from .destinations.customerio import basic_auth

__all__ = ["Transport"]

Failover = Literal["retryable", "send_safe"]
_LOG = logging.getLogger("opencdp")


def _failure(exc: httpx.HTTPError) -> Failure:
    name = type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return Failure(f"{name}: connection not established", maybe_received=False)
    if isinstance(exc, httpx.TimeoutException):
        return Failure(f"{name}: no answer in time", maybe_received=True)
    return Failure(f"{name}: {str(exc)[:120]}", maybe_received=True)


class Transport:
    def __init__(self, config: ClientConfig, debug: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._debug = debug or _LOG.debug
        self.gateway_hosts = config.cdp_hosts
        timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0))
        verify: str | bool = config.tls_ca_file or True
        http2 = importlib.util.find_spec("h2") is not None
        common = {
            "timeout": timeout,
            "follow_redirects": False,
            "verify": verify,
            "http2": http2,
            "trust_env": False,
        }
        agent = f"opencdp-python/{__version__}"
        self._clients: dict[str, httpx.AsyncClient] = {
            "gateway": httpx.AsyncClient(
                headers={
                    "Authorization": config.cdp_api_key,
                    "Content-Type": "application/json",
                    "User-Agent": agent,
                },
                limits=httpx.Limits(
                    max_connections=config.max_concurrent_requests * 2,
                    max_keepalive_connections=config.max_concurrent_requests * 2,
                ),
                **common,  # type: ignore[arg-type]
            )
        }
        self._bases = {"gateway": self.gateway_hosts[0]}
        cio = config.customer_io
        if cio is not None:
            self._clients["track"] = httpx.AsyncClient(
                headers={
                    "Authorization": basic_auth(cio.site_id, cio.api_key),
                    "Content-Type": "application/json",
                    "User-Agent": agent,
                },
                limits=httpx.Limits(max_connections=config.max_concurrent_requests),
                **common,  # type: ignore[arg-type]
            )
            self._bases["track"] = cio.track_url
            if cio.app_api_key:
                self._clients["app"] = httpx.AsyncClient(
                    headers={
                        "Authorization": f"Bearer {cio.app_api_key}",
                        "Content-Type": "application/json",
                        "User-Agent": agent,
                    },
                    **common,  # type: ignore[arg-type]
                )
                self._bases["app"] = cio.app_url

    async def _once(self, service: str, base: str, request: Request) -> Response | Failure:
        client = self._clients[service]
        try:
            response = await client.request(
                request.method, base + request.path, content=request.body,
                headers=request.headers or None,
            )
        except httpx.HTTPError as exc:
            return _failure(exc)
        return Response(
            response.status_code, response.content,
            {k.lower(): v for k, v in response.headers.items()}, base,
        )

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
        for client in self._clients.values():
            await client.aclose()
