"""OpenTelemetry spans for deliveries: one CLIENT span per request (a single gateway message
or a Customer.io batch), recorded after the exchange from the engine's exchange hook.

Spans are built after the fact with the exchange's own start and end times, so the delivery
path does no tracing work while a request is in flight, and a tracer that is slow or broken
cannot delay a delivery (the engine logs and ignores a failing hook). Deliveries run on the
background engine, detached from the request that queued them, so each span is a root span.

Needs ``opentelemetry-api`` (and an SDK with an exporter to see anything).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .redaction import scrub
from .wire import Failure, Request, Response

if TYPE_CHECKING:
    from .client import AsyncClient, Client

__all__ = ["instrument"]

_MARK = "_opencdp_tracing"


def _otel() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ConfigurationError(
            "opencdp.tracing needs OpenTelemetry: pip install opentelemetry-api "
            "opentelemetry-sdk (and an exporter)"
        ) from exc
    return trace


def instrument(client: Client | AsyncClient, tracer: Any = None) -> Callable[[], None]:
    """Record a span per delivery request of ``client``; returns a function that stops it.

    ``tracer`` defaults to ``trace.get_tracer("opencdp")`` from the global provider.
    Instrumenting a client again replaces the earlier instrumentation. Span attributes:
    ``opencdp.destination``, ``opencdp.service``, ``opencdp.kinds``,
    ``opencdp.message_count``, ``http.request.method``, then ``http.response.status_code``
    or ``opencdp.failure_reason`` (credentials redacted); status ERROR for a failure or an
    HTTP status of 400 and above.
    """
    trace = _otel()
    from opentelemetry.context import Context

    engine = getattr(client, "engine", None)
    if engine is None or not hasattr(engine, "dispatcher"):
        raise ConfigurationError(
            f"instrument() needs an opencdp Client or AsyncClient, not {type(client).__name__}"
        )
    if tracer is None:
        from ._version import __version__

        tracer = trace.get_tracer("opencdp", __version__)
    secrets = engine.secrets
    client_kind = trace.SpanKind.CLIENT
    status_cls, error_code = trace.Status, trace.StatusCode.ERROR

    def hook(lane: str, request: Request, result: Response | Failure, start_ns: int,
             end_ns: int) -> None:
        kinds = sorted({item.message.kind for item in request.items})
        attributes: dict[str, Any] = {
            "opencdp.destination": lane,
            "opencdp.service": request.service,
            "opencdp.kinds": kinds,
            "opencdp.message_count": len(request.items),
            "http.request.method": request.method,
        }
        error: str | None = None
        if isinstance(result, Response):
            attributes["http.response.status_code"] = result.status
            if result.host:
                attributes["server.address"] = result.host
            if result.status >= 400:
                error = f"HTTP {result.status}"
                attributes["error.type"] = str(result.status)
        else:
            error = scrub(result.reason, secrets) or "transport failure"
            attributes["opencdp.failure_reason"] = error
            attributes["error.type"] = _error_type(result.reason)
        span = tracer.start_span(f"deliver {lane}", context=Context(), kind=client_kind,
                                 attributes=attributes, start_time=start_ns)
        if error is not None:
            span.set_status(status_cls(error_code, error))
        span.end(end_time=end_ns)

    setattr(hook, _MARK, True)
    dispatcher = engine.dispatcher
    for earlier in dispatcher.exchange_hooks:
        if getattr(earlier, _MARK, False):
            dispatcher.remove_exchange_hook(earlier)
    dispatcher.add_exchange_hook(hook)
    return lambda: dispatcher.remove_exchange_hook(hook)


def _error_type(reason: str) -> str:
    """The exception class a transport failure names (``ConnectError: ...``), else a label."""
    head = reason.split(":", 1)[0].strip()
    return head if head.isidentifier() else "transport"
