"""A register node whose clock is wrong: the node's processes run under
libfaketime (Debian's `faketime`), first 400 days behind, then corrected,
and its till stamps receipts with that clock. The main system applies the
entries by entry number, not time: every receipt arrives once with the
till's own timestamp, stock moves once per line, and the main system's
bookkeeping of the register (last success) uses the main system's clock,
so the dashboard does not call a live register stale or from the future."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.pos.realsystems import create_register, expected_on_hand, main_system, node_database, node_env, sales
from tests.support.processes import manage

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SKEW_DAYS = 400


def _with_clock(env: dict, offset: str) -> dict:
    """`env` for a child whose clock is off by `offset` (faketime syntax)."""
    return {**env, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"}


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs Debian's faketime (apt-get install faketime)")
def test_a_node_with_a_wrong_clock_delivers_every_receipt_once_and_main_keeps_its_own_time(tmp_path):
    with main_system("h_clock") as main:
        create_register(main, "R1", location="S1", records_per_run=100)
        env = node_env(main, "R1", label="h_clocknode")
        with node_database(env):
            skewed = _with_clock(env, f"-{SKEW_DAYS}d")
            # the node's own clock says it is 400 days ago
            seen = manage("shell", "-c", "from django.utils import timezone; print(timezone.now().isoformat())",
                          env=skewed).stdout.strip().splitlines()[-1]
            node_now = datetime.fromisoformat(seen)
            assert timedelta(days=SKEW_DAYS - 1) < datetime.now(UTC) - node_now < timedelta(days=SKEW_DAYS + 1)

            # given 40 receipts stamped by the wrong clock, pushed by the wrong-clock node
            receipts = sales(80, prefix="R1")
            for index, receipt in enumerate(receipts):
                receipt["created_at"] = (node_now + timedelta(minutes=index)).isoformat()
            first, second = receipts[:40], receipts[40:]
            (tmp_path / "first.json").write_text(json.dumps(first))
            manage("record_sales", str(tmp_path / "first.json"), "--no-progress", env=skewed)
            manage("register_push", env=skewed)
            # when the clock is corrected and 40 more (stamped with the true time) follow
            for index, receipt in enumerate(second):
                receipt["created_at"] = (datetime.now(UTC) + timedelta(seconds=index)).isoformat()
            (tmp_path / "second.json").write_text(json.dumps(second))
            manage("record_sales", str(tmp_path / "second.json"), "--no-progress", env=env)
            manage("register_push", env=env)
            manage("register_push", env=env)  # once more: nothing is sent twice
            status = main.status("R1")
            got = main.receipts("R1")
            on_hand = main.on_hand("S1")
            verified = manage("verify_ledger", env=main.env, check=False)

    # then every receipt is there once, in entry order, with the till's own time
    assert (status["last_applied_entry_no"], status["entries"], status["missing"]) == (
        1 + 80 * 4, {"applied": 1 + 80 * 4}, None)
    by_no = {r["receipt_no"]: r for r in got}
    assert sorted(by_no) == [f"R1-{n:06d}" for n in range(1, 81)]
    assert datetime.fromisoformat(by_no["R1-000001"]["created_at"]) == datetime.fromisoformat(
        first[0]["created_at"])
    assert on_hand == expected_on_hand(receipts)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # and the main system judged freshness by its own clock
    last_success = datetime.fromisoformat(status["last_success_at"])
    assert abs(datetime.now(UTC) - last_success) < timedelta(minutes=5)
