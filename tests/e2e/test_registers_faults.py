"""Faults of the register transfer with real processes: the main system
down while sales go on, a worker SIGKILLed in the middle of a batch, and
pull and push giving the same result."""
from __future__ import annotations

import re
import time
from contextlib import ExitStack
from decimal import Decimal

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from pos.models import CashRegister, SyncEntry
from pos.schedules import pos_due
from pos.services.node import MainUnreachable, register_push
from posinv.scheduling import dues_now
from tests.pos.realsystems import (
    Main,
    create_register,
    database_copy,
    expected_on_hand,
    flush_node_redis,
    main_system,
    migrated_database,
    node_database,
    node_env,
    provision,
    record_sales_file,
    sales,
)
from tests.support.processes import (
    database_url,
    drop_database,
    free_port,
    manage,
    process_env,
    started_command,
    started_server,
    started_worker,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_main_down_while_sales_go_on_then_entries_arrive_once_in_order(settings):
    # The main system is a real server on its own database; this test
    # process is the register node (its database is the test database).
    env = process_env(database=database_url("regdown"))
    migrated_database(env["DATABASE_URL"])
    try:
        main = Main(url="", env=env, staff_token=provision(env, locations=["S1"]))
        create_register(main, "R1", location="S1", records_per_run=50)
        port = free_port()
        settings.POSINV_NODE = "register"
        settings.POSINV_REGISTER_CODE = "R1"
        settings.POSINV_REGISTER_TOKEN = main.tokens["R1"]
        settings.MAIN_URL = f"http://127.0.0.1:{port}"
        till = APIClient()
        till.credentials(HTTP_AUTHORIZATION=f"Token {main.tokens['R1']}")
        receipts = sales(60, prefix="R1")

        with started_server(env=env, migrate=False, port=port, name="main-up") as url:
            main.url = url
            for receipt in receipts[:20]:
                assert till.post("/api/v1/till/receipts/", receipt, format="json").status_code == 201
            # The node's copy of the settings is behind the main system's
            # (records per run lowered there): the 413 names the limit.
            CashRegister.objects.filter(code="R1").update(records_per_run=500)
            first = register_push()
            assert (first["applied"], first["calls"]) == (1 + 20 * 4, 3)  # 413, then 50 + 31
            assert CashRegister.objects.get(code="R1").records_per_run == 50

        # Main is down: sales go on and pile up in the outbox.
        for receipt in receipts[20:]:
            assert till.post("/api/v1/till/receipts/", receipt, format="json").status_code == 201
        with pytest.raises(MainUnreachable):
            register_push()
        register = CashRegister.objects.get(code="R1")
        assert register.failures_in_row == 1
        assert register.retry_after > timezone.now()
        now = timezone.now()
        assert dues_now(pos_due(now=now), now=now) == []  # backing off: the scheduler leaves it alone
        assert SyncEntry.objects.filter(state="pending").count() == 40 * 4

        with started_server(env=env, migrate=False, port=port, name="main-back") as url:
            counts = register_push()
            status = main.status("R1")
            got = main.receipts("R1")
            on_hand = main.on_hand("S1")

            # The register is reinstalled with an empty database and numbers
            # from 1 again: its new entries clash with applied ones. They are
            # kept on the main system for a person (409) and stop nothing.
            SyncEntry.objects.all().delete()
            CashRegister.objects.filter(code="R1").update(next_entry_no=1)
            assert till.post("/api/v1/till/receipts/", sales(1, prefix="NEW")[0], format="json").status_code == 201
            clash = register_push()
            register_after_clash = CashRegister.objects.get(code="R1")
            status_after_clash = main.status("R1")

        assert (counts["sent"], counts["applied"], counts["duplicate"], counts["calls"]) == (160, 160, 0, 4)
        assert SyncEntry.objects.filter(state="pending").count() == 0
        register.refresh_from_db()
        assert (register.failures_in_row, register.retry_after, register.last_applied_entry_no) == (0, None, 241)
        assert (status["last_applied_entry_no"], status["entries"], status["receipts"]) == (241, {"applied": 241}, 60)
        assert sorted(r["receipt_no"] for r in got) == [f"R1-{n:06d}" for n in range(1, 61)]
        move_ids = [line["stock_move_id"] for r in sorted(got, key=lambda r: r["receipt_no"]) for line in r["lines"]]
        assert move_ids == sorted(move_ids)  # applied in entry order
        assert on_hand == expected_on_hand(receipts)
        assert (clash["conflict"], clash["applied"], clash["sent"]) == (5, 0, 5)
        assert "entry no. 1 was received before with different content" in register_after_clash.last_error
        assert SyncEntry.objects.filter(state="pending").count() == 0  # nothing is sent again and again
        assert (status_after_clash["last_applied_entry_no"], status_after_clash["receipts"]) == (241, 60)
    finally:
        drop_database(env["DATABASE_URL"])


def test_a_worker_killed_mid_batch_loses_no_entry_and_applies_none_twice(tmp_path):
    flush_node_redis()
    with main_system("regkill") as main:
        create_register(main, "R1", location="S1", records_per_run=40, interval=1)
        env = node_env(main, "R1", label="regkillnode", POSINV_SYNC_LEASE_SECONDS="2")
        total_entries = 1 + 500 * 4
        with node_database(env), ExitStack() as stack:
            receipts = sales(500, prefix="R1")
            record_sales_file(env, receipts, tmp_path, "sales")

            def start_pusher(name: str):
                # With Redis the push runs in an rqworker fed by the scheduler;
                # without, in the scheduler process itself. Either is the
                # process that dies.
                if "REDIS_URL" in env:
                    return stack.enter_context(started_worker(env=env, name=name))
                return stack.enter_context(
                    started_command("run_scheduler", "--interval", "0.2", env=env, name=name)
                )

            if "REDIS_URL" in env:
                stack.enter_context(started_command("run_scheduler", "--interval", "0.2", env=env, name="sched"))
            first = start_pusher("pusher-1")
            wait_until(lambda: main.status("R1")["last_applied_entry_no"] > 0, timeout=60, interval=0.05,
                       message="the push to start")
            first.kill_hard()
            at_kill = main.status("R1")["last_applied_entry_no"]
            assert 0 < at_kill < total_entries, "the worker must die in the middle of the transfer"

            start_pusher("pusher-2")
            wait_until(lambda: main.status("R1")["last_applied_entry_no"] == total_entries, timeout=120,
                       interval=0.5, message="the rest to arrive after the kill")

        status = main.status("R1")
        assert (status["entries"], status["receipts"], status["missing"]) == ({"applied": total_entries}, 500, None)
        got = main.receipts("R1")
        assert sum(len(r["lines"]) for r in got) == 1000
        assert main.on_hand("S1") == expected_on_hand(receipts)
    flush_node_redis()


def test_pull_and_push_give_the_same_result(tmp_path):
    flush_node_redis()
    with main_system("regmodes", locations=["S1", "S2"]) as main, ExitStack() as stack:
        pull_port = free_port()
        create_register(main, "R1", location="S1", records_per_run=200)
        create_register(main, "R2", location="S2", sync_type="pull", records_per_run=200, interval=1,
                        node_url=f"http://127.0.0.1:{pull_port}")
        receipts = sales(150, prefix="X")  # the same receipt numbers on both registers
        push_env = node_env(main, "R1", label="modepush")
        pull_env = node_env(main, "R2", label="modepull")
        with node_database(push_env):
            record_sales_file(push_env, receipts, tmp_path, "push")
            manage("register_push", env=push_env)
        stack.enter_context(node_database(pull_env))
        stack.enter_context(started_server(env=pull_env, port=pull_port, name="pull-node", migrate=False))
        record_sales_file(pull_env, receipts, tmp_path, "pull")
        # The pull node's own scheduler (and worker) only refresh its settings: it never pushes.
        if "REDIS_URL" in pull_env:
            stack.enter_context(started_worker(env=pull_env, name="pull-node-worker"))
        stack.enter_context(started_command("run_scheduler", "--interval", "0.5", env=pull_env, name="pull-sched"))
        time.sleep(3)
        assert main.status("R2")["last_applied_entry_no"] == 0
        # The main system pulls by itself: its scheduler, and its rqworker with Redis.
        if "REDIS_URL" in main.env:
            stack.enter_context(started_worker(env=main.env, name="main-worker"))
        stack.enter_context(started_command("run_scheduler", "--interval", "0.5", env=main.env, name="main-sched"))
        wait_until(lambda: main.status("R2")["last_applied_entry_no"] == 601, timeout=120, interval=0.5,
                   message="the main system to pull every entry")
        again = manage("register_pull", "R2", env=main.env).stdout

        pushed_status, pulled_status = main.status("R1"), main.status("R2")
        assert pushed_status["entries"] == pulled_status["entries"] == {"applied": 1 + 150 * 4}
        assert '"received": 0' in again  # acknowledged: nothing is fetched twice

        def comparable(code: str) -> list[dict]:
            """The receipts as a user sees them, without what names the register or the move."""
            rows = []
            for receipt in main.receipts(code):
                row = {k: v for k, v in receipt.items() if k not in ("register", "lines", "process_no")}
                row["lines"] = [{k: v for k, v in line.items() if k != "stock_move_id"} for line in receipt["lines"]]
                rows.append(row)
            return sorted(rows, key=lambda row: row["receipt_no"])

        assert comparable("R1") == comparable("R2")
        assert len(comparable("R1")) == 150
        assert main.on_hand("S1") == main.on_hand("S2") == expected_on_hand(receipts)
    flush_node_redis()


def _node_processes(stack: ExitStack, main: Main, *, label: str) -> tuple[dict, str]:
    """A register node of `main` as real processes: gunicorn (the till API),
    its scheduler every half second and, with Redis, an rqworker."""
    env = node_env(main, "R1", label=label)
    stack.enter_context(node_database(env))
    url = stack.enter_context(started_server(env=env, name=label, migrate=False))
    if "REDIS_URL" in env:
        stack.enter_context(started_worker(env=env, name=f"{label}-worker"))
    stack.enter_context(started_command("run_scheduler", "--interval", "0.5", env=env, name=f"{label}-scheduler"))
    return env, url


def _ring_up(node_url: str, token: str, receipts: list[dict]) -> None:
    till = requests.Session()
    till.headers["Authorization"] = f"Token {token}"
    for receipt in receipts:
        answer = till.post(f"{node_url}/api/v1/till/receipts/", json=receipt, timeout=60)
        assert answer.status_code == 201, answer.text


def test_a_main_restored_from_a_backup_gets_the_lost_entries_back_from_an_idle_node():
    # The main system is restored from last night's backup; the till is
    # closed (no sale after it). The node hears the main's watermark on its
    # next contact and sends again what the main lost: nothing missing,
    # nothing doubled.
    flush_node_redis()
    env = process_env(database=database_url("regrestore"))
    backup = database_url("regbackup")
    migrated_database(env["DATABASE_URL"])
    try:
        port = free_port()
        main = Main(url=f"http://127.0.0.1:{port}", env=env, staff_token=provision(env, locations=["S1"]))
        create_register(main, "R1", location="S1", interval=1)
        receipts = sales(20, prefix="R1")
        with ExitStack() as stack:
            _, node_url = _node_processes(stack, main, label="regrestorenode")
            with started_server(env=env, migrate=False, port=port, name="main-night-1", workers=1):
                _ring_up(node_url, main.tokens["R1"], receipts[:10])
                wait_until(lambda: main.status("R1")["last_applied_entry_no"] == 41, timeout=60, interval=0.5,
                           message="the first 10 sales on the main system")
            database_copy(env["DATABASE_URL"], backup)  # the nightly backup
            with started_server(env=env, migrate=False, port=port, name="main-day-2", workers=1):
                _ring_up(node_url, main.tokens["R1"], receipts[10:])
                wait_until(lambda: main.status("R1")["last_applied_entry_no"] == 81, timeout=60, interval=0.5,
                           message="all 20 sales on the main system")
            database_copy(backup, env["DATABASE_URL"])  # the main system is restored from it
            with started_server(env=env, migrate=False, port=port, name="main-restored", workers=1):
                wait_until(lambda: main.status("R1")["last_applied_entry_no"] == 81, timeout=60, interval=0.5,
                           message="the node to send again what the restored main system lost, without a sale")
                status = main.status("R1")
                got = main.receipts("R1")
                on_hand = main.on_hand("S1")
        assert (status["entries"], status["receipts"], status["missing"]) == ({"applied": 81}, 20, None)
        assert sorted(r["receipt_no"] for r in got) == [f"R1-{n:06d}" for n in range(1, 21)]
        assert all(line["stock_move_id"] for receipt in got for line in receipt["lines"])
        assert on_hand == expected_on_hand(receipts)  # each sale moved stock once
    finally:
        drop_database(env["DATABASE_URL"])
        drop_database(backup)


def test_a_sale_the_main_refuses_fails_alone_later_sales_arrive_and_health_says_so():
    # The node (no ledger of its own) accepts a return of 999,999,999 units,
    # which would take the main system's level beyond the system's bound.
    # That one entry is kept failed on the main system with its reason; the
    # rest of the receipt and every later sale arrive; /healthz turns red
    # naming it with a link to the entry, and green again once a person has
    # skipped it with a reason.
    flush_node_redis()
    with main_system("regrefuse") as main, ExitStack() as stack:
        create_register(main, "R1", location="S1", interval=1)
        _, node_url = _node_processes(stack, main, label="regrefusenode")
        receipts = sales(10, prefix="R1")
        refused = receipts[3]["lines"][0]
        refused.update(quantity="-999999999", unit_price="0.00")
        receipts[3]["payments"][0]["amount"] = str(sum(
            Decimal(line["quantity"]) * Decimal(line["unit_price"]) for line in receipts[3]["lines"]))
        record_id = f"receipt_line:R1-000004:{refused['line_no']}"

        _ring_up(node_url, main.tokens["R1"], receipts)
        wait_until(lambda: main.status("R1")["last_applied_entry_no"] == 41, timeout=60, interval=0.5,
                   message="all ten sales on the main system")

        status = main.status("R1")
        assert (status["entries"], status["receipts"], status["missing"]) == ({"applied": 40, "failed": 1}, 10, None)
        assert re.match(rf"1 failed entry: entry \d+ \({record_id}\) could not be applied: .*bound",
                        status["last_error"]), status["last_error"]
        kept = [dict(receipt, lines=[line for line in receipt["lines"] if line is not refused]) for receipt in receipts]
        assert main.on_hand("S1") == expected_on_hand(kept)  # every other line moved stock
        health = requests.get(f"{main.url}/healthz", timeout=30).json()["registers"]
        assert health["status"] == "red"
        assert health["reason"].startswith("register R1: 1 failed entry: entry ")
        assert record_id in health["reason"]
        assert "state__exact=failed" in health["link"] and "register__id__exact=" in health["link"]

        manage("shell", "-c", (
            "from pos.models import SyncEntry; from pos.services.apply import entries_skip; "
            f"e = SyncEntry.objects.get(record_id='{record_id}', direction='in'); "
            "print(entries_skip(register_id=e.register_id, entry_ids=[e.pk], reason='return keyed wrongly; "
            "booked by hand', user='alice'))"), env=main.env)
        more = sales(12, prefix="R1")[10:]
        _ring_up(node_url, main.tokens["R1"], more)
        wait_until(lambda: main.status("R1")["last_applied_entry_no"] == 49, timeout=60, interval=0.5,
                   message="the sales after it")

        assert requests.get(f"{main.url}/healthz", timeout=30).json()["registers"] == {
            "status": "green", "reason": "in sync", "link": ""}
        assert main.status("R1")["entries"] == {"applied": 48, "skipped": 1}
