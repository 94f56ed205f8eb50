"""What importing opencdp loads: the client and its HTTP stack only when a client is used.

Each check runs in a fresh interpreter (this one has long imported everything). Timings are
not asserted here; ``bench/import_cost.py`` prints them beside Customer.io's client.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("aiohttp", "opencdp.client", "opencdp.dispatch")


def _loaded(code: str) -> dict[str, bool]:
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    return dict(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("code", [
    "import opencdp",
    "import opencdp.guards",
    "from opencdp import __version__, ValidationError, ConfigurationError",
    "import opencdp.audit, opencdp.audit.command",
    "from opencdp.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "from opencdp.cli import main\ntry:\n    main(['audit', '--help'])\nexcept SystemExit:\n"
    "    pass",
])
def test_loads_without_the_client_or_aiohttp(code: str) -> None:
    assert _loaded(code) == dict.fromkeys(HEAVY, False)


def test_the_client_is_loaded_on_first_use() -> None:
    assert _loaded("import opencdp\nopencdp.Client") == dict.fromkeys(HEAVY, True)


def test_the_lazy_root_has_every_public_name() -> None:
    import opencdp

    for name in opencdp.__all__:
        assert getattr(opencdp, name) is not None, name
    assert set(opencdp.__all__) <= set(dir(opencdp))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        opencdp.Nope  # noqa: B018
