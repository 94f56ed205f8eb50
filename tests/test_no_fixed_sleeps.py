"""No new fixed sleep in the tests: time is a dependency (issue 22, item 6).

A test that sleeps to let something happen is slow where the machine is fast and flaky
where it is loaded. Wait on the condition instead (``support.waiting.wait_for``), or step a
``ManualClock`` passed to what is under test. A sleep may stay only where the sleep is the
scenario itself (an outage's length, a producer's pace, a slow client's bytes) or where it
is the step of a bounded poll; each such place is listed below with its reason, by file and
enclosing function so that the list survives edits around it. An entry whose sleep has gone
fails the test too, so the list only shrinks.

``asyncio.sleep(0)`` (yield to the loop once) is not a wait and is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

POLL = "the step of a bounded poll loop (deadline checked around it)"
SCENARIO = "the sleep is the scenario"
OTHERS = ("in an area under edit by others when the sleeps were removed (issue 22 item 6): "
          "to convert to wait_for / a stepped clock")

ALLOWED: dict[str, str] = {
    # the poll helpers themselves
    "support/waiting.py::wait_for": POLL,
    "support/servers.py::wait_until": POLL,
    # the audit's sample app: code under audit, never run
    "audit/sample_app/shop/tasks.py::send_weekly_digest": "audited sample code, never run",
    "audit/sample_app/shop/tasks.py::retry_identify": "audited sample code, never run",
    # real processes whose readiness is polled
    "redis_server.py::running_redis": POLL + ": redis-server start-up",
    "redis_server.py::RestartableRedis.start": POLL + ": redis-server start-up",
    "redis_server.py::RedisCluster._start": POLL + ": cluster start-up",
    "redis_server.py::RedisCluster.wait_ok": POLL + ": cluster state",
    "redis_server.py::RedisCluster.wait_failover": POLL + ": failover",
    "integrations/support_apps.py::Server.wait_http": POLL + ": an app server's start-up",
    "integrations/support_apps.py::wait_stored": POLL + ": sandbox contents",
    "integrations/test_readme_servers.py::wait_stored_users": POLL + ": sandbox contents",
    "outbox/test_sqlite_edges.py::wait_for": POLL + " (a local helper)",
    "outbox/test_redis_edges.py::_wait": POLL + " (a local helper)",
    "outbox/test_conformance.py::test_retry_waits_until_not_before_and_counts_the_attempt":
        POLL + ": Redis promotes by its own wall clock",
    "outbox/test_durable.py::test_expired_lease_is_redelivered_with_the_same_attempt":
        POLL + ": Redis measures idle time on its own clock",
    "outbox/test_durable.py::test_batched_mode_commits_within_the_interval": POLL,
    "outbox/test_durable.py::test_next_due_does_not_make_a_lane_spin":
        "sleeps until the queue's own next_due, as a lane does: the behaviour under test",
    "outbox/test_durable.py::test_sqlite_group_commit_commits_queued_callers_together": POLL,
    # the sleep is what is tested
    "outbox/test_spill.py::Stream._put": SCENARIO + ": a host app's pace of puts",
    "outbox/test_spill.py::test_redis_paused_under_a_stream_of_puts":
        SCENARIO + ": Redis paused far longer than the put timeout",
    "outbox/test_crash.py::test_sigkill_in_batched_mode_loses_at_most_the_last_interval":
        SCENARIO + ": the child runs on so the kill lands mid-stream",
    "outbox/test_sqlite_edges.py::_child": SCENARIO + ": a forked child's pace",
    "outbox/test_sqlite_edges.py::test_children_forked_mid_batch_lose_and_double_nothing":
        SCENARIO + ": forks land mid-batch",
    "outbox/test_sqlite_edges.py::test_a_live_process_in_another_pid_namespace_keeps_its_leases":
        SCENARIO + ": the other process stays alive past a lease check",
    "durability/test_app_crash.py::kill_after": POLL + ": acknowledgements before a kill",
    "durability/test_process_edges.py::test_install_signal_handlers_drains_wherever_sigterm_lands":
        SCENARIO + ": SIGTERM lands at a different point of each run",
    "durability/test_process_edges.py::test_concurrent_closes_tell_the_same_truth":
        "lets the first close get under way before the second: to convert",
    "durability/test_stateful.py::Delivery.teardown": POLL + ": the queue drains",
    "reconcile/test_reconcile.py::run_with_outage":
        "the window's edge must not share a millisecond with the outage (wall-clock stamps "
        "made by the sandbox)",
    "sandbox/test_timeouts.py::test_a_slow_but_steady_client_is_served":
        SCENARIO + ": a slow client's bytes against uvicorn's real read timeout",
    "sandbox/test_timeouts.py::test_the_relay_answers_408_and_logs_no_traceback":
        SCENARIO + ": a client gives up, then the server's real read timeout passes",
    "integrations/test_process_client.py::hang": SCENARIO + ": a handler that hangs",
    "test_transport.py::test_a_server_that_accepts_and_stays_silent_may_have_received.silent":
        SCENARIO + ": a server that accepts and stays silent",
    "integrations/support_apps.py::drive.run": SCENARIO + ": a client's pace",
    "integrations/test_celery_app.py::worker": POLL + ": a celery worker's start-up",
    "integrations/test_celery_app.py::publish_until_stopped": SCENARIO + ": a producer's pace",
    "integrations/scenario.py::durable": "lets the drained server settle before SIGTERM: to "
                                         "convert",
    "integrations/scenario.py::memory": "requests the server had in flight when it stopped",
    "integrations/test_readme_servers.py::serve":
        "gives late log lines time to appear before asserting there are none",
    "integrations/test_readme_servers.py::celery_worker": POLL + ": a celery worker's start-up",
    "integrations/test_readme_servers.py::test_celery_worker_stopped_under_latency_loses_nothing":
        POLL + ": tasks succeeded",
    "integrations/test_metrics_workers.py::test_metrics_route_without_a_lifespan_of_ones_own":
        POLL + ": a subprocess server's start-up",
    "integrations/test_metrics_workers.py::test_workers_scrapes_count_every_worker":
        POLL + ": every worker has answered once",
    # still to convert
    "outbox/test_conformance.py::test_a_replayed_dead_letter_is_enqueued_at_the_replay":
        "separates two wall-clock stamps, one taken inside Redis: to convert",
    "outbox/test_redis_edges.py::test_the_wall_clock_stepped_back_a_day_moves_no_retry_and_no_age":
        "waits out a lease on Redis's own clock: to convert",
    "outbox/test_redis_edges.py::test_oldest_pending_age_follows_a_message_from_put_to_ack":
        "lets an age grow on Redis's own clock: to convert",
    "health/test_progress.py::test_a_day_forward_expires_no_budget":
        "lets real retries run after a clock step: to convert to a stepped ManualClock",
    # others' areas under edit
    "outbox/test_cluster.py::test_readers_share_partitions_and_take_over_a_dead_ones": OTHERS,
    "outbox/test_cluster.py::wait_all": OTHERS,
    "outbox/test_cluster.py::test_killed_worker_loses_nothing_and_duplicates_nothing": OTHERS,
    "outbox/test_cluster.py::test_a_master_killed_while_traffic_flows_loses_nothing.produce":
        OTHERS,
    "outbox/test_group_commit.py::Recorder.__call__": OTHERS,
    "outbox/test_group_commit.py::test_a_put_that_waits_too_long_is_maybe_stored": OTHERS,
    "outbox/test_group_commit.py::test_a_put_from_a_signal_handler_never_waits_for_its_own_"
    "thread.write": OTHERS,
    "outbox/test_group_commit.py::test_async_client_awaits_the_commit_without_blocking_its_"
    "loop.run.ticker": OTHERS,
    "server/test_scale.py::_wait_for": OTHERS,
    "dashboard/test_relay_dashboard.py::until": OTHERS,
    "dashboard/test_relay_dashboard.py::_traffic": OTHERS,
    "dashboard/test_sandbox_page.py::test_the_sandbox_page_in_chromium": OTHERS,
    "migrate/test_hold.py::test_retention_purges_exactly_the_copies_older_than_it": OTHERS,
    "migrate/test_hold.py::test_a_held_client_killed_and_restarted_keeps_every_held_copy":
        OTHERS,
}


def _sleep_names(tree: ast.Module) -> set[str]:
    """Names ``sleep`` was imported under (``from time import sleep``)."""
    return {alias.asname or alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module in ("time", "asyncio")
            for alias in node.names if alias.name == "sleep"}


def _is_sleep(call: ast.Call, names: set[str]) -> bool:
    func = call.func
    named = (isinstance(func, ast.Attribute) and func.attr == "sleep"
             and isinstance(func.value, ast.Name) and func.value.id in ("time", "asyncio")) or (
        isinstance(func, ast.Name) and func.id in names)
    first = call.args[0] if call.args else None
    yields = isinstance(first, ast.Constant) and first.value == 0
    return named and not yields


def sleeps() -> dict[str, list[int]]:
    """``path::Enclosing.function`` -> the lines of its sleeps, for every test file."""
    found: dict[str, list[int]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        if any(part.startswith(".") for part in path.relative_to(TESTS).parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = _sleep_names(tree)
        where = path.relative_to(TESTS).as_posix()

        def visit(node: ast.AST, stack: tuple[str, ...], where: str = where,
                  names: set[str] = names) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(child, (*stack, child.name))
                    continue
                if isinstance(child, ast.Call) and _is_sleep(child, names):
                    key = f"{where}::{'.'.join(stack) or '<module>'}"
                    found.setdefault(key, []).append(child.lineno)
                visit(child, stack)

        visit(tree, ())
    return found


def test_no_fixed_sleep_outside_the_allow_list() -> None:
    new = {key: lines for key, lines in sleeps().items() if key not in ALLOWED}
    assert not new, (
        "a fixed sleep in a test: wait on the condition (support.waiting.wait_for) or step a "
        f"ManualClock; if the sleep is the scenario, list it in ALLOWED with why: {new}")


def test_the_allow_list_has_no_stale_entry() -> None:
    gone = sorted(set(ALLOWED) - set(sleeps()))
    assert not gone, f"these places no longer sleep; remove them from ALLOWED: {gone}"


def test_the_scan_sees_every_spelling() -> None:
    """The scanner itself: module sleeps, imported sleeps, nested functions; not sleep(0)."""
    source = ("import time, asyncio\nfrom time import sleep as nap\n"
              "def a():\n    time.sleep(1)\n"
              "class B:\n    def c(self):\n        def d():\n            nap(0.1)\n"
              "async def e():\n    await asyncio.sleep(0)\n    await asyncio.sleep(0.5)\n")
    tree = ast.parse(source)
    names = _sleep_names(tree)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_sleep(n, names)]
    assert sorted(c.lineno for c in calls) == [4, 8, 11]
