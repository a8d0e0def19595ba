"""End to end: a real main system and a real register node, separate
gunicorn processes on 127.0.0.1 with separate databases (PostgreSQL when
DATABASE_URL is set), the node's scheduler and, with REDIS_URL, real
rqworker processes. 1,000 sales rung up on the node's till API arrive on
the main system by themselves; receipts and stock are read back through the
main system's API."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal

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
from tests.support.processes import free_port, manage, started_command, started_server, started_worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_thousand_sales_on_a_register_node_reach_the_main_system_in_order_once():
    flush_node_redis()
    with main_system("regmain") as main, ExitStack() as stack:
        create_register(main, "R1", location="S1", interval=1)
        if "REDIS_URL" in main.env:
            stack.enter_context(started_worker(env=main.env, name="main-worker"))
        env = node_env(main, "R1", label="regnode")
        stack.enter_context(node_database(env))
        node_url = stack.enter_context(started_server(env=env, name="regnode", migrate=False))
        if "REDIS_URL" in env:
            stack.enter_context(started_worker(env=env, name="node-worker"))
        stack.enter_context(started_command("run_scheduler", "--interval", "0.5", env=env, name="node-scheduler"))
        receipts = sales(1000, prefix="R1")
        till = requests.Session()
        till.headers["Authorization"] = f"Token {main.tokens['R1']}"

        def ring_up(receipt: dict) -> int:
            return till.post(f"{node_url}/api/v1/till/receipts/", json=receipt, timeout=60).status_code

        assert ring_up(receipts[0]) == 201
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(ring_up, receipts[1:]))
        assert statuses == [201] * 999

        # one process entry, then per receipt: receipt, 2 lines, 1 payment
        total_entries = 1 + 1000 * 4
        wait_until(lambda: main.status("R1")["last_applied_entry_no"] == total_entries, timeout=180,
                   interval=0.5, message="all entries applied on the main system")

        status = main.status("R1")
        assert (status["entries"], status["receipts"], status["missing"]) == ({"applied": total_entries}, 1000, None)
        got = main.receipts("R1")
        assert sorted(r["receipt_no"] for r in got) == [f"R1-{n:06d}" for n in range(1, 1001)]
        first = next(r for r in got if r["receipt_no"] == "R1-000001")
        assert [(line["sku"], line["quantity"]) for line in first["lines"]] == [
            (receipts[0]["lines"][0]["sku"], f"{Decimal(receipts[0]['lines'][0]['quantity']):.3f}"),
            (receipts[0]["lines"][1]["sku"], f"{Decimal(receipts[0]['lines'][1]['quantity']):.3f}"),
        ]
        assert all(line["stock_move_id"] for receipt in got for line in receipt["lines"])
        assert main.on_hand("S1") == expected_on_hand(receipts)
        # Stock moves were posted in the node's entry order (the till rang
        # receipts up from 4 threads, so that is not receipt-no. order).
        outbox, after = [], 0
        while True:
            page = requests.get(f"{node_url}/api/v1/sync/outbox/", params={"after": after, "limit": 500},
                                headers={"Authorization": f"Token {main.tokens['R1']}"}, timeout=30).json()
            outbox += page["entries"]
            if not page["more"]:
                break
            after = page["entries"][-1]["entry_no"]
        assert [e["entry_no"] for e in outbox] == list(range(1, total_entries + 1))
        move_of = {(r["receipt_no"], line["line_no"]): line["stock_move_id"] for r in got for line in r["lines"]}
        move_ids = [move_of[(e["record"]["receipt_no"], e["record"]["line_no"])]
                    for e in outbox if e["table"] == "receipt_line"]
        assert len(move_ids) == 2000
        assert move_ids == sorted(move_ids)
    flush_node_redis()


def test_synchronize_on_the_main_system_makes_a_push_node_send_now(tmp_path):
    flush_node_redis()
    with main_system("regsync") as main, ExitStack() as stack:
        node_port = free_port()
        # An hour between runs: only the first tick and Synchronize make the node send.
        create_register(main, "R1", location="S1", interval=3600, node_url=f"http://127.0.0.1:{node_port}")
        env = node_env(main, "R1", label="regsyncnode")
        stack.enter_context(node_database(env))
        stack.enter_context(started_server(env=env, port=node_port, name="regsyncnode", migrate=False))
        receipts = sales(40, prefix="R1")
        record_sales_file(env, receipts[:10], tmp_path, "before")
        if "REDIS_URL" in env:
            stack.enter_context(started_worker(env=env, name="node-worker"))
        stack.enter_context(started_command("run_scheduler", "--interval", "0.5", env=env, name="node-scheduler"))
        wait_until(lambda: main.status("R1")["last_applied_entry_no"] == 1 + 10 * 4, timeout=60,
                   message="the first run to send what was there")
        record_sales_file(env, receipts[10:], tmp_path, "after")
        time.sleep(2)
        assert main.status("R1")["last_applied_entry_no"] == 41  # nothing travels before the next interval

        out = manage("synchronize", "R1", env=main.env).stdout

        assert out.strip() == "R1: the register node was asked to send now"
        wait_until(lambda: main.status("R1")["last_applied_entry_no"] == 41 + 30 * 4, timeout=60,
                   message="the node to send")
        assert main.on_hand("S1") == expected_on_hand(receipts)
    flush_node_redis()
