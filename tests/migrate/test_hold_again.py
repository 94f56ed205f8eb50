"""``opencdp migrate hold``: after a rollback released the hold, the same running clients hold
again within a second, and a second rollback delivers what they held, in order, once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from migrate.test_hold import USER, _cli, _client, _order, _track
from support.waiting import wait_for


def test_hold_again_after_a_rollback(sandbox: Any, tmp_path: Path) -> None:
    queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    client = _client(sandbox, queue_url)
    try:
        _track(client, range(50))
        assert client.flush(30)
        assert _cli(sandbox, "hold", "--queue", queue_url, "--json").returncode == 0
        assert json.loads(_cli(sandbox, "hold", "--queue", queue_url, "--json").stdout)[
            "changed"] is False

        rolled = _cli(sandbox, "rollback", "--queue", queue_url, "--json")
        assert rolled.returncode == 0, rolled.stderr
        assert json.loads(rolled.stdout)["delivered"] == 50
        assert wait_for(lambda: client.health().destinations["customerio"].state == "ok", 10)

        again = _cli(sandbox, "hold", "--queue", queue_url, "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["changed"] is True
        assert wait_for(lambda: client.health().destinations["customerio"].state == "held", 10)
        _track(client, range(50, 80))
        assert client.flush(30)
        assert client.health().destinations["customerio"].held_count == 30
        assert _order(sandbox) == list(range(50))

        rolled = _cli(sandbox, "rollback", "--queue", queue_url, "--json")
        assert json.loads(rolled.stdout)["delivered"] == 30
        assert _order(sandbox) == list(range(80))
        assert Counter(e["data"]["seq"] for e in sandbox.person("customerio", USER)["events"]
                       ) == Counter(range(80))

        finished = _cli(sandbox, "finish", "--queue", queue_url, "--yes")
        assert finished.returncode == 1  # released: nothing to finish
        assert _cli(sandbox, "hold", "--queue", queue_url).returncode == 0
        assert _cli(sandbox, "finish", "--queue", queue_url, "--yes").returncode == 0
        refused = _cli(sandbox, "hold", "--queue", queue_url)
        assert refused.returncode == 1 and "finished" in refused.stderr
    finally:
        client.close(5)
