"""The main system's worker SIGKILLed while it applies pulled register
entries (pull mode: the main system fetches a node's outbox and applies it;
the push-mode kill, on the node's side, is tests/e2e/test_registers_faults.py).
Sync health turns amber or red naming the dead work within seconds; a
second worker takes over, the killed run is shown failed ("Abandoned: ...")
and health is green again: every entry is applied once, in order, and the
stock equals the sales."""
from __future__ import annotations

from contextlib import ExitStack

import pytest
import requests

from tests.pos.realsystems import (
    create_register,
    expected_on_hand,
    flush_node_redis,
    main_system,
    node_database,
    node_env,
    record_sales_file,
    sales,
)
from tests.reliability.systems import health
from tests.support.processes import free_port, manage, started_command, started_server, started_worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_main_worker_killed_while_applying_pulled_entries_loses_none_and_applies_none_twice(tmp_path):
    flush_node_redis()
    with main_system("h_pullkill", POSINV_SYNC_LEASE_SECONDS="2", POSINV_HEARTBEAT_SECONDS="1",
                     POSINV_DEAD_AFTER_SECONDS="4") as main, ExitStack() as stack:
        port = free_port()
        create_register(main, "R2", location="S1", sync_type="pull", records_per_run=20, interval=1,
                        node_url=f"http://127.0.0.1:{port}")
        # given a pull node with 200 sales (801 entries) waiting in its outbox
        env = node_env(main, "R2", label="h_pullkillnode")
        stack.enter_context(node_database(env))
        stack.enter_context(started_server(env=env, port=port, name="pullkill-node", migrate=False))
        receipts = sales(200, prefix="R2")
        record_sales_file(env, receipts, tmp_path, "pull")
        total = 1 + 200 * 4

        def start_puller(name: str):
            # With Redis the pull runs in the main system's rqworker, fed by its scheduler;
            # without, in the scheduler itself. Either is the process that dies.
            if "REDIS_URL" in main.env:
                return stack.enter_context(started_worker(env=main.env, name=name))
            return stack.enter_context(
                started_command("run_scheduler", "--interval", "0.2", env=main.env, name=name))

        if "REDIS_URL" in main.env:
            stack.enter_context(started_command("run_scheduler", "--interval", "0.2", env=main.env,
                                                name="pullkill-sched"))
        # when the main system's puller is SIGKILLed in the middle of the transfer
        first = start_puller("puller-1")
        wait_until(lambda: main.status("R2")["last_applied_entry_no"] > 0, timeout=90, interval=0.05,
                   message="the pull to start")
        first.kill_hard()
        killed = first.pid
        at_kill = main.status("R2")["last_applied_entry_no"]
        assert 0 < at_kill < total, "the worker must die in the middle of the transfer"

        # then Sync health says so within seconds (POSINV_DEAD_AFTER_SECONDS=4), in words, with the rows behind it
        def dead_work_seen():
            seen = health(main.env)
            reason = seen["queues"]["reason"]
            return seen if seen["queues"]["status"] in ("amber", "red") and (
                "stopped answering" in reason or "without a heartbeat" in reason) else None

        during = wait_until(dead_work_seen, timeout=30, interval=0.5, message="health to see the killed worker")
        assert during["queues"]["links"]["runs"].endswith("/admin/posinv/jobrun/?status__exact=running")
        # (the scheduler marks a dead run failed by itself, so it may be either by now)
        assert [r["status"] for r in during["runs"] if r["process"].endswith(f":{killed}")
                and r["name"] == "register_pull"][-1] in ("running", "failed")
        if "REDIS_URL" in main.env:
            # a dead worker is not a worker: /healthz no longer says the workers are fine
            assert during["queues"]["workers"] == 0
            checks = requests.get(f"{main.url}/healthz", timeout=10).json()["checks"]
            assert checks["workers"] in ("none running", "failed"), checks
        # and another takes over
        start_puller("puller-2")
        wait_until(lambda: main.status("R2")["last_applied_entry_no"] == total, timeout=150, interval=0.5,
                   message="the rest to be pulled after the kill")
        # then the killed run is shown failed with the reason, and health is green again
        last = []

        def green_again():
            last[:] = [health(main.env)]
            return last[0] if last[0]["queues"]["status"] == "green" else None

        after = wait_until(green_again, timeout=60, interval=1,
                           message=lambda: f"health to turn green after the new worker ran: {last[-1]['queues']} "
                                   f"{last[-1]['failed_jobs']}")
        status = main.status("R2")
        got = main.receipts("R2")
        on_hand = main.on_hand("S1")
        verified = manage("verify_ledger", env=main.env, check=False)
    flush_node_redis()

    of_the_killed = [r for r in after["runs"] if r["process"].endswith(f":{killed}")]
    assert of_the_killed and not [r for r in of_the_killed if r["status"] == "running"], of_the_killed
    abandoned = [r for r in of_the_killed if r["error"].startswith("Abandoned:")]
    assert [r["name"] for r in abandoned] == ["register_pull"], of_the_killed
    assert abandoned[0]["status"] == "failed"
    assert "stopped answering" in abandoned[0]["error"]
    assert (after["queues"]["dead_workers"], after["queues"]["dead_runs"]) == (0, 0)
    # then every entry and receipt is there once and stock moved once per line
    assert (status["entries"], status["receipts"], status["missing"]) == ({"applied": total}, 200, None)
    assert sorted(r["receipt_no"] for r in got) == [f"R2-{n:06d}" for n in range(1, 201)]
    assert sum(len(r["lines"]) for r in got) == 400
    assert on_hand == expected_on_hand(receipts)
    assert verified.returncode == 0, verified.stdout + verified.stderr
