"""The main system's rqworker SIGKILLed while it applies pulled register
entries (pull mode: the main system fetches a node's outbox and applies it;
the push-mode kill, on the node's side, is tests/e2e/test_registers_faults.py).
A second worker takes over: every entry is applied once, in order, and the
stock equals the sales."""
from __future__ import annotations

from contextlib import ExitStack

import pytest

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
from tests.support.processes import free_port, manage, started_command, started_server, started_worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_main_worker_killed_while_applying_pulled_entries_loses_none_and_applies_none_twice(tmp_path):
    flush_node_redis()
    with main_system("h_pullkill", POSINV_SYNC_LEASE_SECONDS="2") as main, ExitStack() as stack:
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
        at_kill = main.status("R2")["last_applied_entry_no"]
        assert 0 < at_kill < total, "the worker must die in the middle of the transfer"
        # and another takes over
        start_puller("puller-2")
        wait_until(lambda: main.status("R2")["last_applied_entry_no"] == total, timeout=150, interval=0.5,
                   message="the rest to be pulled after the kill")
        status = main.status("R2")
        got = main.receipts("R2")
        on_hand = main.on_hand("S1")
        verified = manage("verify_ledger", env=main.env, check=False)
    flush_node_redis()

    # then every entry and receipt is there once and stock moved once per line
    assert (status["entries"], status["receipts"], status["missing"]) == ({"applied": total}, 200, None)
    assert sorted(r["receipt_no"] for r in got) == [f"R2-{n:06d}" for n in range(1, 201)]
    assert sum(len(r["lines"]) for r in got) == 400
    assert on_hand == expected_on_hand(receipts)
    assert verified.returncode == 0, verified.stdout + verified.stderr
