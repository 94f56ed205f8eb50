"""Flask routes."""

import os
import time

from customerio import CustomerIO
from flask import Flask, request

from opencdp.integrations.flask import OpenCDP

from .clients import tracker

app = Flask(__name__)
cdp = OpenCDP(app)


@app.post("/login")
def login() -> dict[str, bool]:
    user_id = request.form["user_id"]
    tracker.track(user_id, "user_logged_in", timestamp=int(time.time()))
    return {"ok": True}


@app.route("/invite", methods=["POST"])
def accept_invite() -> dict[str, bool]:
    cio = CustomerIO(  # OCDP207
        os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"]
    )
    user_id = request.form["user_id"]
    cio.track(customer_id=user_id, name="invite_accepted")  # OCDP203, OCDP208
    cio.identify(id=user_id, email=request.form["email"])  # OCDP208
    return {"ok": True}


@app.post("/password-reset")
def reset_password() -> dict[str, bool]:
    cdp.client.track(request.form["user_id"], "Password Reset")  # OCDP206
    cdp.client_for(app).identify(request.form["email"], {"reset": True})  # OCDP212
    return {"ok": True}
