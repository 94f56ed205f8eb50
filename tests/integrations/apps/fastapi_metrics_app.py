"""FastAPI with the integration's lifespan and ``metrics_routes()``, no lifespan of its own.
Every answer names the worker process that gave it (``X-Worker-Pid``)."""

import os
from collections.abc import Awaitable, Callable
from typing import Annotated

from app_options import client_options
from fastapi import Depends, FastAPI, Request, Response

from opencdp import AsyncClient
from opencdp.integrations.fastapi import get_client, health_routes, lifespan, metrics_routes

app = FastAPI(lifespan=lifespan(lambda: AsyncClient(**client_options())))
app.routes.extend(health_routes())
app.routes.extend(metrics_routes(interval=float(os.environ.get("APP_METRICS_INTERVAL", "1"))))


@app.middleware("http")
async def worker_pid(request: Request,
                     call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.post("/track/{i}")
async def track(i: int, cdp: Annotated[AsyncClient, Depends(get_client)]) -> str:
    await cdp.track(f"t{i}", "signed_up", {"i": i})
    return "ok"
