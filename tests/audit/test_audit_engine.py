"""The engine: discovery, suppression, parse failures, cross-module resolution, scoring,
and the analysis behind the rules (what is and is not a client, a handler or a loop)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from opencdp.audit import WEIGHTS, AuditResult, Finding, Severity, audit_paths, audit_source


def codes(source: str, path: str = "example.py") -> list[tuple[int, str]]:
    result = audit_source(textwrap.dedent(source), path)
    return [(f.line, f.code) for f in result.findings]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


CIO = """\
import os
from customerio import CustomerIO
cio = CustomerIO(os.environ["SITE"], os.environ["KEY"])
"""


# -- suppression and selection -------------------------------------------------------------


def test_noqa_with_codes_suppresses_only_those_codes() -> None:
    source = """\
    from opencdp import Client
    client = Client(cdp_api_key="8d7e6f5a4b3c2d1e")  # noqa: OCDP201
    other = Client(cdp_api_key="8d7e6f5a4b3c2d1e")  # noqa: E501
    """
    assert codes(source) == [(3, "OCDP201")]


def test_bare_noqa_suppresses_everything_on_the_line() -> None:
    source = CIO + "def f(u):\n    cio.track(u.email, 'SignedUp')  # noqa\n"
    assert codes(source) == []


def test_select_and_ignore_take_code_prefixes() -> None:
    source = CIO + "def f(u):\n    cio.track(u.email, 'SignedUp')\n"
    assert {c for _, c in codes(source)} == {"OCDP206", "OCDP212"}
    result = audit_source(source, select=["OCDP206"])
    assert [f.code for f in result.findings] == ["OCDP206"]
    result = audit_source(source, ignore=["OCDP21"])
    assert [f.code for f in result.findings] == ["OCDP206"]


# -- files -----------------------------------------------------------------------------------


def test_parse_failure_is_reported_and_other_files_are_still_audited(tmp_path: Path) -> None:
    write(tmp_path, {"broken.py": "def f(:\n    pass\n", "ok.py": 'API_KEY = "8d7e6f5a4b3c"\n'})
    result = audit_paths([tmp_path])
    assert [(Path(f.path).name, f.code) for f in result.findings] == [
        ("broken.py", "OCDP200"),
        ("ok.py", "OCDP201"),
    ]
    assert result.findings[0].line == 1


def test_long_expressions_are_analysed_and_too_deep_files_reported_not_raised() -> None:
    long = 'from opencdp import Client\nc = Client.from_env()\nc.track("1", "a"'
    long += ' + "b"' * 900 + " + x)\n"
    assert codes(long) == [(3, "OCDP204")]
    deep = "import opencdp\nx = 1" + " + 1" * 20_000 + "\n"
    result = audit_source(deep)
    assert [(f.line, f.code) for f in result.findings] == [(1, "OCDP200")]


def test_discovery_skips_hidden_dirs_and_virtualenvs(tmp_path: Path) -> None:
    secret = 'API_KEY = "8d7e6f5a4b3c"\n'
    write(
        tmp_path,
        {
            ".git/hooks/x.py": secret,
            "env/lib/site.py": secret,
            "env/pyvenv.cfg": "home = /usr\n",
            "node_modules/pkg/x.py": secret,
            "app/settings.py": secret,
        },
    )
    result = audit_paths([tmp_path])
    assert [Path(f.path).relative_to(tmp_path).as_posix() for f in result.findings] == [
        "app/settings.py"
    ]
    assert result.files == 1


def test_html_is_checked_when_named_or_under_a_message_path(tmp_path: Path) -> None:
    page = "<html><body><p>Hello</p></body></html>\n"
    write(tmp_path, {"pages/home.html": page, "mail/promo.html": page, "x/about.htm": page})
    result = audit_paths([tmp_path])
    assert [Path(f.path).name for f in result.findings] == ["promo.html"]
    explicit = audit_paths([tmp_path / "x" / "about.htm"])
    assert [f.code for f in explicit.findings] == ["OCDP210"]


def test_templates_follow_extends_and_include(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "emails/layout.html": "<html><body>{% block c %}{% endblock %}</body></html>",
            "emails/footer.html": '<a href="{% unsubscribe_url %}">Stop these emails</a>',
            "emails/promo.html": (
                '{% extends "emails/layout.html" %}{% include "emails/footer.html" %}'
            ),
            "emails/sale.html": '{% extends "emails/layout.html" %}<p>Sale!</p>',
            "emails/partial.html": '{% include "shared/unknown.html" %}<p>Hi</p>',
        },
    )
    result = audit_paths([tmp_path])
    assert [Path(f.path).name for f in result.findings] == ["sale.html"]


def test_transactional_templates_are_skipped(tmp_path: Path) -> None:
    bare = "<html><body><p>Your code is {{ code }}</p></body></html>"
    write(
        tmp_path,
        {
            "emails/password_reset.html": bare,
            "emails/transactional/shipped.html": bare,
            "emails/marked.html": "<!-- opencdp: transactional -->" + bare,
        },
    )
    assert audit_paths([tmp_path]).findings == ()


# -- cross-module resolution ---------------------------------------------------------------


def test_clients_and_factories_resolve_across_modules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/__init__.py": "from .clients import cio as exported\n",
            "app/clients.py": CIO
            + textwrap.dedent(
                """\
                import functools

                _cached = None

                @functools.lru_cache
                def get_client():
                    return CustomerIO(os.environ["SITE"], os.environ["KEY"])

                def singleton():
                    global _cached
                    if _cached is None:
                        _cached = CustomerIO(os.environ["SITE"], os.environ["KEY"])
                    return _cached
                """
            ),
            "app/jobs.py": """\
                import app.clients
                from app import exported
                from . import clients
                from .clients import get_client, singleton

                def run(users):
                    for u in users:
                        app.clients.cio.identify(id=u.id)
                    for u in users:
                        clients.cio.identify(id=u.id)
                    for u in users:
                        get_client().identify(id=u.id)
                    for u in users:
                        singleton().identify(id=u.id)
                    for u in users:
                        exported.identify(id=u.id)
                """,
        },
    )
    result = audit_paths([tmp_path / "app" / "jobs.py"])
    assert [(f.line, f.code) for f in result.findings] == [
        (8, "OCDP209"), (10, "OCDP209"), (12, "OCDP209"), (14, "OCDP209"), (16, "OCDP209")
    ]


def test_a_project_module_named_analytics_is_not_segment(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "analytics.py": "def track(user_id, event):\n    return None\n",
            "views.py": "import analytics\nanalytics.track('1', 'Signed Up')\n",
        },
    )
    assert audit_paths([tmp_path]).findings == ()
    assert codes("import analytics\nanalytics.track('1', 'Signed Up')\n") == [(2, "OCDP206")]


def test_customerio_data_pipelines_module_is_a_segment_style_client() -> None:
    source = """\
    from customerio import analytics
    analytics.write_key = "9f8e7d6c5b4a3f2e"
    analytics.track(user_id=4, event="Order Complete")
    """
    assert codes(source) == [(2, "OCDP201"), (3, "OCDP206")]


def test_self_attributes_annotations_and_with_targets_are_clients() -> None:
    source = """\
    import os
    from customerio import CustomerIO
    from cdp_client import CDPClient

    class Sync:
        def __init__(self):
            self.cio = CustomerIO(os.environ["SITE"], os.environ["KEY"])

        def run(self, users):
            for u in users:
                self.cio.identify(id=u.id)

    async def push(cdp: CDPClient, users):
        for u in users:
            await cdp.identify(u.id, {})

    def scoped(users, factory):
        with factory() as unknown, CustomerIO(os.environ["S"], os.environ["K"]) as cio:
            for u in users:
                unknown.identify(id=u.id)
                cio.identify(id=u.id)
    """
    assert codes(source) == [(11, "OCDP209"), (15, "OCDP209"), (21, "OCDP209")]


def test_unknown_receivers_are_not_clients() -> None:
    source = """\
    import logging
    log = logging.getLogger(__name__)

    def f(users, mixpanel):
        for u in users:
            mixpanel.track(u.email, "SignedUp")
            log.info(f"user_{u.email}")
    """
    assert codes(source) == []


# -- the integrations' clients and clients known by name only ------------------------------


def test_integration_accessors_are_clients(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/worker.py": """\
                from celery import Celery
                from opencdp.integrations.celery import OpenCDP

                celery = Celery("shop")
                cdp = OpenCDP(celery)
                """,
            "app/views.py": """\
                from typing import Annotated, Any

                from fastapi import Depends, FastAPI, Request
                from flask import Flask
                from opencdp.integrations import django as opencdp_django
                from opencdp.integrations.django import get_client
                from opencdp.integrations.fastapi import get_client as api_client
                from opencdp.integrations.flask import OpenCDP

                from .worker import celery, cdp

                flask_app = Flask(__name__)
                ext = OpenCDP(flask_app)
                api = FastAPI()

                def order(request):
                    get_client().track(str(request.user.pk), "Order Placed")
                    opencdp_django.get_client().flush()

                @celery.task
                def receipt(user_id):
                    cdp.client.track(user_id, "Receipt Sent")

                @flask_app.post("/login")
                def login():
                    ext.client.track("1", "Logged In")
                    ext.client_for(flask_app).track("1", f"login_{1}")

                @api.post("/a")
                async def a(user_id: str, client=Depends(api_client)):
                    await client.track(user_id, "A Done")

                @api.post("/b")
                async def b(user_id: str, c: Annotated[Any, Depends(api_client)]):
                    await c.track(user_id, "B Done")

                @api.post("/c")
                async def c(request: Request, user_id: str):
                    await request.app.state.opencdp.track(user_id, "C Done")
                    await api_client(request).track(user_id, "C Again")
                """,
        },
    )
    result = audit_paths([tmp_path / "app" / "views.py"])
    assert [(f.line, f.code) for f in result.findings] == [
        (17, "OCDP206"), (18, "OCDP208"), (22, "OCDP206"), (26, "OCDP206"), (27, "OCDP204"),
        (31, "OCDP206"), (35, "OCDP206"), (39, "OCDP206"), (40, "OCDP206"),
    ]


def test_integration_objects_are_followed_like_clients() -> None:
    source = """\
    from opencdp.integrations.flask import OpenCDP

    class Service:
        def __init__(self, app):
            self.cdp = OpenCDP(app)

        def run(self, user_id):
            self.cdp.client.track(user_id, "Run Done")

    def helper(cdp: OpenCDP, user_id):
        cdp.client.track(user_id, "Helper Done")
        cdp.track(user_id, "Not A Client Call")
    """
    assert codes(source) == [(8, "OCDP206"), (11, "OCDP206")]


def test_integration_accessors_are_known_by_where_they_come_from() -> None:
    source = """\
    from fastapi import Depends
    from .api import get_client

    class Holder:
        client = None

    cdp = Holder()

    def f(user_id, cdp_client=Depends(get_client)):
        get_client().track(user_id, "Not Ours")
        cdp.client.track(user_id, "Not Ours")
        cdp_client.track(user_id, "Not Ours")
    """
    assert codes(source) == []


def test_unannotated_parameters_named_like_clients_make_only_api_calls() -> None:
    source = """\
    import httpx

    def record(client, cio, cdp, analytics, mixpanel, user):
        client.track(user.id, "Refund Issued")
        cio.track(customer_id=user.id, name=f"refund_{user.id}")
        cdp.identify(user.email, {})
        analytics.track(user.id, "refund-issued")
        mixpanel.track(user.id, "Refund Issued")

    def test_views(client, user):
        client.get("/")
        client.delete("/orders/1")
        client.close()
        client.flush()

    def typed(client: httpx.Client, user):
        client.track(user.id, "Refund Issued")

    def unknown_library(client, users):
        for user in users:
            client.identify(user.id, {})

    def rebound(client, user):
        client = make()
        client.track(user.id, "Refund Issued")
    """
    assert codes(source) == [
        (4, "OCDP206"), (5, "OCDP204"), (6, "OCDP212"), (7, "OCDP206"), (25, "OCDP206"),
    ]


def test_a_parameter_named_like_a_client_that_is_a_known_client_keeps_its_kind() -> None:
    source = CIO + textwrap.dedent(
        """\
        from flask import Flask
        app = Flask(__name__)

        @app.post("/x")
        def x(client=cio):
            client.identify(id="1")
            return {}
        """
    )
    assert codes(source) == [(9, "OCDP208")]


def test_request_first_functions_are_views_given_some_evidence(tmp_path: Path) -> None:
    build = """\
    from opencdp import Client

    def handler(request):
        client = Client.from_env()
        client.track(request.user_id, "signed_up")

    def send(request):
        client = Client.from_env()
        client.track(request.user_id, "signed_up")
    """
    assert codes(build, "main.py") == [(4, "OCDP207")]
    assert codes(build, "shop/views.py") == [(4, "OCDP207"), (8, "OCDP207")]
    imports = "from opencdp.integrations.django import get_client\n" + textwrap.dedent(build)
    assert codes(imports, "main.py") == [(5, "OCDP207"), (9, "OCDP207")]


def test_framework_settings_with_a_literal_key_name_the_setting() -> None:
    source = """\
    OPENCDP = {
        "cdp_api_key": "8d7e6f5a4b3c2d1e",
        "customer_io": {"site_id": "2f1e0d9c8b7a", "region": "eu"},
        "queue": "sqlite:///var/lib/shop/opencdp.db",
    }
    app.config["OPENCDP"] = dict(cdp_api_key="8d7e6f5a4b3c2d1e")
    """
    result = audit_source(textwrap.dedent(source), "shop/settings.py")
    assert [(f.line, f.message) for f in result.findings] == [
        (2, "hard-coded credential in `OPENCDP['cdp_api_key']`; leave it out: the environment "
            "fills it in (CDP_API_KEY)"),
        (3, "hard-coded credential in `OPENCDP['customer_io']['site_id']`; leave it out: the "
            "environment fills it in (CUSTOMERIO_SITE_ID)"),
        (6, "hard-coded credential in `OPENCDP['cdp_api_key']`; leave it out: the environment "
            "fills it in (CDP_API_KEY)"),
    ]


# -- handlers, loops, awaiting -------------------------------------------------------------


def test_function_defined_in_a_handler_does_not_run_in_the_request() -> None:
    source = CIO + textwrap.dedent(
        """\
        from fastapi import BackgroundTasks, FastAPI
        app = FastAPI()

        @app.post("/x")
        async def x(user_id: str, tasks: BackgroundTasks):
            def later():
                cio.identify(id=user_id)
            tasks.add_task(later)
            tasks.add_task(cio.track, user_id, "x_done")
            return {}
        """
    )
    assert codes(source) == []


def test_fire_and_forget_coroutines_do_not_block_the_handler() -> None:
    source = """\
    import asyncio, os
    from cdp_client import CDPClient, CDPConfig
    from fastapi import FastAPI
    app = FastAPI()
    cdp = CDPClient(CDPConfig(cdp_api_key=os.environ["K"]))

    @app.post("/x")
    async def x(user_id: str):
        asyncio.create_task(cdp.track(user_id, "x_done"))
        await asyncio.gather(cdp.identify(user_id, {}))
        return {}
    """
    assert codes(source) == [(9, "OCDP203"), (10, "OCDP208")]


def test_opencdp_blocking_mode_blocks_and_background_mode_does_not() -> None:
    source = """\
    from flask import Flask
    from opencdp import Client
    app = Flask(__name__)
    background = Client.from_env()
    blocking = Client(cdp_api_key=__import__("os").environ["K"], delivery="blocking")

    @app.post("/x")
    def x():
        background.track("1", "x_done")
        blocking.track("1", "x_done")
        return {}
    """
    assert codes(source) == [(10, "OCDP208")]


def test_bounded_loops_and_throttled_loops_are_not_reported() -> None:
    source = CIO + textwrap.dedent(
        """\
        import asyncio
        limiter = asyncio.Semaphore(10)

        def bounded(u):
            for attempt in range(3):
                cio.identify(id=u.id)
            for key in ("a", "b"):
                cio.identify(id=key)
            for u2 in u.friends[:20]:
                cio.identify(id=u2.id)

        async def limited(users):
            for u in users:
                async with limiter:
                    cio.identify(id=u.id)

        def unbounded(users):
            while True:
                cio.identify(id=users.pop().id)
        """
    )
    assert codes(source) == [(22, "OCDP209")]


def test_loop_in_a_comprehension_iterable_runs_once() -> None:
    source = CIO + "def f(u):\n    return [x for x in cio.identify(id=u.id) or []]\n"
    assert codes(source) == []


def test_django_class_based_views_and_drf_viewsets_are_handlers() -> None:
    source = CIO + textwrap.dedent(
        """\
        from rest_framework import viewsets
        from django.views.generic import FormView

        class Signup(FormView):
            def form_valid(self, form):
                cio.identify(id=form.cleaned_data["id"])

        class People(viewsets.ModelViewSet):
            def perform_create(self, serializer):
                cio.identify(id=serializer.data["id"])

            def helper(self):
                cio.identify(id="1")
        """
    )
    assert codes(source) == [(9, "OCDP208"), (13, "OCDP208")]


def test_millisecond_timestamps_need_a_client_library_in_the_module() -> None:
    source = "import time\nrow = {'created_at': int(time.time() * 1000)}\n"
    assert codes(source) == []
    assert codes("import opencdp\n" + source) == [(3, "OCDP202")]


def test_microseconds_and_nanoseconds_are_fine_grained_too() -> None:
    source = """\
    import time
    import opencdp
    attrs = {"seen_at": time.time_ns() // 1000, "created": time.time_ns()}
    attrs["updated_at"] = round(time.time() * 1e6)
    ok = {"created_at": time.time_ns() // 1_000_000_000}
    """
    assert codes(source) == [(3, "OCDP202"), (3, "OCDP202"), (4, "OCDP202")]


def test_credentials_in_test_files_are_not_reported() -> None:
    assert codes('API_KEY = "8d7e6f5a4b3c"\n', "tests/test_client.py") == []
    assert codes('API_KEY = "8d7e6f5a4b3c"\n', "conftest.py") == []
    assert codes('API_KEY = "8d7e6f5a4b3c"\n', "shop/testing.py") == []


@pytest.mark.parametrize(
    "value",
    [
        "", "changeme", "<your-api-key>", "${CIO_KEY}", "xxxx", "CIO_API_KEY", "test-key",
        "\u3299", "a sentence, not a key", "abc", "write-key", "secret_key",
    ],
)
def test_placeholders_are_not_credentials(value: str) -> None:
    assert codes(f"api_key = {value!r}\n") == []


# -- score -----------------------------------------------------------------------------------


def _findings(*severities: Severity) -> tuple[Finding, ...]:
    return tuple(Finding("a.py", i + 1, 1, "OCDP201", "m", s) for i, s in enumerate(severities))


def test_score_subtracts_weights_and_stops_at_zero() -> None:
    assert WEIGHTS == {Severity.ERROR: 15, Severity.WARNING: 5, Severity.NOTE: 1}
    mixed = AuditResult(_findings(Severity.ERROR, Severity.WARNING, Severity.NOTE), files=1)
    assert mixed.score == 100 - 15 - 5 - 1
    assert AuditResult(_findings(*[Severity.ERROR] * 7), files=1).score == 0
    assert AuditResult((), files=0).score == 100


def test_failed_compares_score_and_severity() -> None:
    warnings = AuditResult(_findings(Severity.WARNING, Severity.WARNING), files=1)
    assert warnings.score == 90
    assert warnings.failed(fail_under=91)
    assert not warnings.failed(fail_under=90)
    assert warnings.failed(fail_on=Severity.WARNING)
    assert warnings.failed(fail_on=Severity.NOTE)
    assert not warnings.failed(fail_on=Severity.ERROR)
    assert not warnings.failed()
