from typing import Annotated

from app_options import client_options
from fastapi import Depends, FastAPI

from opencdp import AsyncClient
from opencdp.integrations.fastapi import get_client, health_routes, lifespan

app = FastAPI(lifespan=lifespan(lambda: AsyncClient(**client_options())))
app.routes.extend(health_routes())


@app.post("/track/{i}")
async def track(i: int, cdp: Annotated[AsyncClient, Depends(get_client)]) -> str:
    await cdp.track(f"t{i}", "signed_up", {"i": i})
    return "ok"


@app.get("/ping")
async def ping() -> str:
    return "pong"
