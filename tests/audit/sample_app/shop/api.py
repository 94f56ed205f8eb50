"""FastAPI routes."""

import asyncio
import os

from cdp_client import CDPClient, CDPConfig
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request

from opencdp.integrations.fastapi import get_client, lifespan

from .clients import async_tracker, cio

app = FastAPI(lifespan=lifespan())
router = APIRouter(prefix="/api")
cdp = CDPClient(CDPConfig(cdp_api_key=os.environ["CDP_API_KEY"]))


@router.post("/products/{product_id}/view")
async def view_product(product_id: int, user_id: str) -> dict[str, bool]:
    await async_tracker().track(user_id, f"viewed_product_{product_id}")  # OCDP204
    await async_tracker().track(user_id, "product_viewed", {"product_id": product_id})
    return {"ok": True}


@router.post("/referrals")
async def refer(user_id: str, friend_email: str) -> dict[str, bool]:
    await cdp.track(user_id, "referral_sent", {"friend_email": friend_email})  # OCDP208
    return {"ok": True}


@router.post("/devices")
async def register_device(user_id: str, token: str, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(cio.add_device, user_id, token, "ios")
    return {"ok": True}


@router.post("/profile")
async def update_profile(request: Request) -> dict[str, bool]:
    form = await request.form()
    await asyncio.to_thread(cio.identify, id=str(form["user_id"]), plan=form["plan"])  # OCDP208
    return {"ok": True}


@router.post("/feedback")
async def feedback(user_id: str, score: int) -> dict[str, bool]:
    def send() -> None:
        cio.track(customer_id=user_id, name="feedback_given", data={"score": score})

    asyncio.get_running_loop().call_soon(send)
    return {"ok": True}


@router.post("/wishlist")
async def add_to_wishlist(
    user_id: str, product_id: int, cdp=Depends(get_client)  # noqa: B008
) -> dict[str, bool]:
    await cdp.track(user_id, "Wishlist Added", {"product_id": product_id})  # OCDP206
    return {"ok": True}


@router.post("/reviews")
async def post_review(request: Request, user_id: str) -> dict[str, bool]:
    await request.app.state.opencdp.track(user_id, "Review Posted")  # OCDP206
    return {"ok": True}


app.include_router(router)
