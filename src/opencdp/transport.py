"""HTTP for the engine: the aiohttp implementation of ``opencdp.wire.Transport``.

A transport makes one exchange (``Request`` in, ``Response`` or ``Failure`` out) and decides
nothing else: which host, which credentials and whether to try elsewhere are the
destination's business. What it does decide is the *kind* of a failure, because that tells
whether the server may have received the request: a connect error, connect timeout or failed
TLS handshake means it never left (safe to try another host, even for a transactional send);
a read timeout or a dropped connection means it may have arrived. Redirects are never
followed, for the same reason. Foreign exceptions are converted here and nowhere else.

Why aiohttp rather than httpx: the gateway lane keeps up to 30 requests in flight, one per
message, and httpx's connection pool does work proportional to its connections on every
request. Measured in one run against the sandbox with 20 ms injected latency and 30
concurrent requests (``bench/throughput.py`` shape): one pooled httpx client 90 req/s,
30 single-connection httpx clients 327 req/s, aiohttp 800 req/s.

Host names are looked up on the engine's own ``DaemonExecutor`` (``threads.py``), never on the
loop's default executor (gone at interpreter exit) or libuv's thread pool (not fork-safe).

Proxies: ``proxy=`` wins; otherwise, with ``trust_env`` (the default), ``HTTPS_PROXY`` /
``HTTP_PROXY`` and ``NO_PROXY`` are honoured, and loopback hosts never go through a proxy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import urllib.request
from typing import cast
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc
from aiohttp.resolver import ThreadedResolver

from ._version import __version__
from .checks import is_loopback
from .config import ClientConfig
from .threads import Lookups
from .wire import Failure, FailureKind, Request, Response, Transport

__all__ = ["AiohttpTransport", "Transport", "failure_from"]


def failure_from(exc: BaseException) -> Failure:
    """The ``Failure`` for an exception raised by a request, with its kind."""
    name = type(exc).__name__
    kind: FailureKind
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError,
                        aiohttp.ClientConnectorSSLError)):
        kind, what = "tls", "TLS handshake failed"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind, what = "connect", "connection not established"
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind, what = "connect_timeout", "connection not established in time"
    elif isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        kind, what = "timeout", "no answer in time"
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                          aiohttp.ClientPayloadError, ConnectionError)):
        kind, what = "reset", "connection dropped"
    else:
        kind, what = "internal", str(exc)[:120]
    return Failure(f"{name}: {what}", kind)


class AiohttpTransport:
    """One pooled session, created lazily on the engine's loop (aiohttp binds it there)."""

    def __init__(self, config: ClientConfig,
                 lookups: concurrent.futures.Executor | None = None) -> None:
        self.config = config
        self._lookups = lookups
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}
        self._timeout = aiohttp.ClientTimeout(
            total=config.timeout, sock_connect=min(config.timeout, 5.0)
        )

    def _open(self) -> aiohttp.ClientSession:
        ssl_context: ssl.SSLContext | bool = True
        if self.config.tls_ca_file:
            ssl_context = ssl.create_default_context(cafile=self.config.tls_ca_file)
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": f"opencdp-python/{__version__}"},
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=self.config.max_concurrent_requests * 3,
                                           ssl=ssl_context, resolver=self._resolver()),
            trust_env=False,
            auto_decompress=True,
        )
        return self._session

    def _resolver(self) -> aiohttp.abc.AbstractResolver | None:
        if self._lookups is None:
            return None
        return ThreadedResolver(loop=cast(asyncio.AbstractEventLoop, Lookups(self._lookups)))

    def proxy_for(self, base: str) -> str | None:
        """The proxy for requests to ``base`` (cached per host)."""
        try:
            return self._proxies[base]
        except KeyError:
            pass
        host = urlsplit(base).hostname or ""
        proxy: str | None = None
        if not is_loopback(host):
            if self.config.proxy:
                proxy = self.config.proxy
            elif self.config.trust_env and not urllib.request.proxy_bypass(host):
                found = urllib.request.getproxies()
                proxy = found.get(urlsplit(base).scheme) or found.get("all")
        self._proxies[base] = proxy
        return proxy

    async def send(self, request: Request) -> Response | Failure:
        session = self._session or self._open()
        try:
            async with session.request(
                request.method, request.url, data=request.body,
                headers=request.headers or None, allow_redirects=False,
                proxy=self.proxy_for(request.base),
            ) as response:
                body = await response.read()
                return Response(
                    response.status, body,
                    {k.lower(): v for k, v in response.headers.items()}, request.base,
                )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return failure_from(exc)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
