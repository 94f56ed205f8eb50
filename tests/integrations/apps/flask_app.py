from app_options import options
from flask import Flask

from opencdp.integrations.flask import OpenCDP

cdp = OpenCDP()


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["OPENCDP"] = options()
    cdp.init_app(app)

    @app.post("/track/<int:i>")
    def track(i: int) -> str:
        cdp.client.track(f"t{i}", "signed_up", {"i": i})
        return "ok"

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    return app


app = create_app()
