"""The Frameworks and Testing pages' examples (docs/frameworks.md, docs/testing.md; the README's
until it became a front page), extracted and run as written against the sandbox: each must
deliver to both platforms."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# Where each former README section lives now: (page, its "## " heading, or None: the page).
PAGES = {"Frameworks": ("frameworks.md", "Examples"),
         "Testing your integration": ("testing.md", None)}


def section(title: str) -> str:
    page, heading = PAGES[title]
    text = (DOCS / page).read_text()
    if heading is None:
        return text
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def blocks(subsection: str) -> list[str]:
    """The Python blocks of a Frameworks subsection."""
    text = section("Frameworks")
    start = text.index(f"\n### {subsection}\n")
    end = text.find("\n### ", start + 1)
    return list(BLOCK.findall(text[start:end if end > 0 else None]))


def examples(subsection: str) -> dict[str, str]:
    """``{file name: source}`` of a Frameworks subsection's blocks (first line ``# name``)."""
    files = {}
    for block in blocks(subsection):
        first = block.splitlines()[0]
        assert first.startswith("# "), f"{subsection}: a block must open with '# file.py'"
        files[first[2:].strip()] = block
    return files


def env(sandbox: Any, tmp_path: Path) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))}
    base.update(
        PYTHONPATH=f"{tmp_path}{os.pathsep}{HERE}", CDP_API_KEY="cdp-test-key",
        CUSTOMERIO_SITE_ID="sandbox-site", CUSTOMERIO_TRACK_API_KEY="sandbox-track-key",
        OPENCDP_ENDPOINT=sandbox.opencdp_url, OPENCDP_FALLBACK_ENDPOINTS="",
        CUSTOMERIO_TRACK_URL=sandbox.track_url, CUSTOMERIO_APP_URL=sandbox.app_url)
    return base


def run(sandbox: Any, tmp_path: Path, files: dict[str, str], driver: str) -> str:
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    (tmp_path / "driver.py").write_text("import readme_env  # noqa: F401\n" + driver)
    result = subprocess.run([sys.executable, "driver.py"], cwd=tmp_path,
                            env=env(sandbox, tmp_path), capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def delivered(sandbox: Any, user: str, event: str) -> None:
    for service in ("opencdp", "customerio"):
        person = sandbox.person(service, user)
        assert person is not None, (service, user)
        assert [e["name"] for e in person["events"]] == [event], (service, person)


def test_django(sandbox: Any, tmp_path: Path) -> None:
    files = examples("Django")
    assert set(files) == {"settings.py", "urls.py"}
    out = run(sandbox, tmp_path, files, """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
import django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("check")
web = Client()
assert web.post("/signup", {"user_id": "readme-django"}).status_code == 200
health = web.get("/health")
print(health.status_code, health.json()["status"])
from opencdp.integrations.django import get_client
assert get_client().flush(10)
""")
    assert out.split()[-2:] == ["200", "ok"]
    delivered(sandbox, "readme-django", "signed_up")


def test_fastapi(sandbox: Any, tmp_path: Path) -> None:
    files = examples("FastAPI and Starlette")
    assert set(files) == {"main.py"}
    out = run(sandbox, tmp_path, files, """
from fastapi.testclient import TestClient
from main import app
with TestClient(app) as web:
    assert web.post("/signup", params={"user_id": "readme-fastapi"}).json() == {"ok": True}
    health = web.get("/health")
    print(health.status_code, health.json()["status"])
""")
    assert out.split()[-2:] == ["200", "ok"]
    delivered(sandbox, "readme-fastapi", "signed_up")


def test_flask(sandbox: Any, tmp_path: Path) -> None:
    files = examples("Flask")
    assert set(files) == {"app.py"}
    out = run(sandbox, tmp_path, files, """
from app import cdp, create_app
app = create_app()
web = app.test_client()
assert web.post("/signup", data={"user_id": "readme-flask"}).status_code == 200
health = web.get("/health")
print(health.status_code, health.json["status"])
assert cdp.client_for(app).flush(10)
""")
    assert out.split()[-2:] == ["200", "ok"]
    delivered(sandbox, "readme-flask", "signed_up")


def test_celery(sandbox: Any, tmp_path: Path) -> None:
    files = examples("Celery")
    assert set(files) == {"tasks.py"}
    run(sandbox, tmp_path, files, """
from tasks import app, cdp, welcome
app.conf.task_always_eager = True
welcome.delay("readme-celery")
assert cdp.client.flush(10)
""")
    delivered(sandbox, "readme-celery", "welcome_sent")


def test_testing_section_runs_green_with_the_plugin(sandbox: Any, tmp_path: Path) -> None:
    blocks = BLOCK.findall(section("Testing your integration"))
    assert len(blocks) == 1
    (tmp_path / "test_example.py").write_text(blocks[0])
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-W", "error", "test_example.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "4 passed" in result.stdout

