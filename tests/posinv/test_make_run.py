"""`make run`'s script for real: migrate, demo data, the demo admin printed
once, then the admin, the API schema and docs served on a free port with a
scheduler (and an rqworker when Redis is configured); a second run is safe;
SIGTERM stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from decimal import Decimal

import pytest
import requests

from tests.support.processes import (
    create_database,
    database_url,
    drop_database,
    free_port,
    manage,
    process_env,
    spawn,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def api_roundtrip(env: dict[str, str], base: str) -> None:
    """A staff token from the command, moves posted twice over HTTP (the
    replay moves nothing), levels read back, and the ledger checked by the
    command's exit code."""
    token = manage("create_api_token", "admin", env=env).stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Token {token}"}
    batch = {
        "moves": [
            {"kind": "sale", "idempotency_key": "e2e:1", "sku": "NUT-M8", "location": "S1", "quantity": "-3"},
            {"kind": "count", "idempotency_key": "e2e:2", "sku": "NUT-M8", "location": "W1", "counted": "480"},
        ]
    }

    def on_hand() -> dict[str, Decimal]:
        answer = requests.get(f"{base}/api/v1/stock-levels/", params={"article": "NUT-M8"}, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return {row["location"]: Decimal(row["on_hand"]) for row in answer.json()["results"]}

    before = on_hand()  # other apps' demo loaders sell and count too
    first = requests.post(f"{base}/api/v1/stock-moves/", json=batch, headers=headers, timeout=30)
    again = requests.post(f"{base}/api/v1/stock-moves/", json=batch, headers=headers, timeout=30)
    after = on_hand()
    assert first.status_code == 200, first.text
    assert [(r["status"], Decimal(r["quantity"])) for r in first.json()["results"]] == [
        ("posted", Decimal("-3")),
        ("posted", Decimal("480") - before["W1"]),
    ]
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert after == {**before, "S1": before["S1"] - 3, "W1": Decimal("480")}
    assert manage("verify_ledger", env=env, check=False).returncode == 0


def serve_once(env: dict[str, str], port: int, check_api: bool = False) -> tuple[str, list[int]]:
    """Start scripts/run-all.sh, check it serves, stop it with SIGTERM; returns its log and children."""
    child = spawn(["bash", "scripts/run-all.sh"], env={**env, "PORT": str(port)}, name="make-run")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: not child.alive() or requests.get(f"{base}/admin/login/", timeout=2).status_code == 200,
            timeout=300,
            interval=0.5,
            message="make run to serve",
        )
        assert child.alive(), child.log()
        workers = children_of(child.pid)
        answers = {
            path: requests.get(base + path, timeout=10) for path in ("/admin/login/", "/api/schema/", "/api/docs/")
        }
        assert {path: a.status_code for path, a in answers.items()} == {
            "/admin/login/": 200,
            "/api/schema/": 200,
            "/api/docs/": 200,
        }
        assert "openapi: 3" in answers["/api/schema/"].text
        assert requests.get(f"{base}/api/v1/stock-levels/", timeout=10).status_code in (401, 403)
        if check_api:
            api_roundtrip(env, base)
    finally:
        os.kill(child.pid, signal.SIGTERM)
        child.popen.wait(timeout=30)
    return child.log(tail=200_000), workers


def test_make_run_serves_and_runs_twice_safely():
    env = process_env(database=database_url("a_makerun"), DEBUG="1")
    create_database(env["DATABASE_URL"])
    try:
        first_log, first_children = serve_once(env, free_port(), check_api=True)
        second_log, _ = serve_once(env, free_port())
    finally:
        drop_database(env["DATABASE_URL"])

    password = re.search(r"demo admin created: username 'admin', password '([^']+)'", first_log)
    assert password, first_log[-3000:]
    assert "demo admin created" not in second_log
    assert "demo admin 'admin' exists already (password unchanged)" in second_log
    assert "48 stock moves posted" in first_log and "0 stock moves posted" in second_log
    # scheduler + web, and a worker when Redis is configured
    assert len(first_children) == (3 if "REDIS_URL" in env else 2)
    assert "RQ worker started" in first_log if "REDIS_URL" in env else "No REDIS_URL" in first_log
    assert "scheduler stopped after" in first_log
    for pid in first_children:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
