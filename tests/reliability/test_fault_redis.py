"""Redis stopped while live sales keep arriving, against real processes: a
gunicorn main system, an rqworker and the scheduler, all on a private Redis
that the test kills. Sales are still accepted; their change announcements
wait in the database (StockChange rows) and are dispatched once Redis is
back; every sale is present exactly once and the ledger holds. The worker
does not exit: it waits for Redis and drains the outbox when it is back,
with a line per phase of the outage and no traceback; the web logs one
warning per process for the whole outage, not a traceback per sale."""
from __future__ import annotations

import os
import time
from contextlib import ExitStack

import pytest

from tests.reliability.systems import expected_on_hand, post_reading, seed, sell, state
from tests.support.processes import (
    LOG_DIR,
    create_database,
    database_url,
    drop_database,
    manage,
    process_env,
    started_command,
    started_server,
    started_worker,
    wait_until,
)
from tests.support.services import private_redis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_sales_are_accepted_while_redis_is_down_and_their_announcements_flow_once_it_is_back():
    with private_redis() as redis, ExitStack() as stack:
        env = process_env(database=database_url("h_redisdown"), redis=False, REDIS_URL=redis.url,
                          POSINV_CHANGES_SWEEP_SECONDS="1", POSINV_SCHEDULER_TICK_SECONDS="0.5")
        create_database(env["DATABASE_URL"])
        stack.callback(drop_database, env["DATABASE_URL"])
        manage("migrate", "--noinput", env=env)
        tokens = seed(env, tills=["T1", "T2"])
        readings = []
        url = stack.enter_context(started_server(env=env, migrate=False, name="main-redis"))
        worker = stack.enter_context(started_worker(env=env, name="worker-redis"))
        stack.enter_context(started_command("run_scheduler", "--interval", "0.5", env=env, name="sched-redis"))

        # given sales flowing with Redis up: their announcements are dispatched
        sold = {"T1": [], "T2": []}
        for n in range(1, 21):
            for till in sold:
                assert sell(url, tokens[till], till=till, n=n).status_code == 201
                sold[till].append(n)
        for n in range(1, 6):
            readings.append(post_reading(url, tokens["CAB1"], n=n).status_code)
        wait_until(lambda: state(env)["changes_waiting"] == 0, timeout=60, interval=0.5,
                   message="announcements to drain while Redis is up")

        # when Redis dies and the tills keep selling (and one retries a sale)
        redis.stop()
        down = []
        for n in range(21, 61):
            for till in sold:
                down.append(sell(url, tokens[till], till=till, n=n).status_code)
                sold[till].append(n)
        retry = sell(url, tokens["T1"], till="T1", n=40)
        for n in range(6, 11):  # and the cabinet keeps weighing
            readings.append(post_reading(url, tokens["CAB1"], n=n).status_code)
        readings.append(post_reading(url, tokens["CAB1"], n=10).status_code)  # a reading sent twice

        # then every sale was accepted and its announcement waits in the database
        assert down == [201] * 80
        assert readings == [200] * 11
        assert (retry.status_code, retry.headers.get("Idempotent-Replayed")) == (201, "true")
        during = state(env)
        assert during["live_sales"] == 120
        assert during["changes_waiting"] > 0
        assert during["drift"] == []

        # and Redis stays away a while longer (the worker backs off: 1, 2, 4 s ...)
        wait_until(lambda: "Redis" in worker.log(20000) and "unreachable" in worker.log(20000)
                   or "could not connect to Redis" in worker.log(20000), timeout=20, interval=0.5,
                   message="the worker to see Redis gone")
        time.sleep(6)
        outage_lines = [line for line in worker.log(200000).splitlines() if "Redis" in line]
        assert worker.alive(), worker.log()

        # when Redis comes back, the same worker (never restarted) drains the outbox
        redis.start()
        wait_until(lambda: state(env)["changes_waiting"] == 0, timeout=60, interval=1,
                   message=lambda: f"waiting announcements to flow after Redis is back; worker:\n{worker.log()}")
        after = state(env)
        assert worker.alive(), worker.log()
        worker.stop(timeout=20)
        worker_exit = worker.popen.returncode
        worker_log = worker.log(500000)
        web_logs = [path.read_text(errors="replace") for path in LOG_DIR.glob(f"main-redis-{os.getpid()}-*.log")]

    # then every sale is there exactly once, stock moved once per line, the ledger holds
    assert after["live_sales"] == 120
    assert after["receipt_nos"] == sorted(f"{till}-{n:06d}" for till in ("T1", "T2") for n in range(1, 61))
    assert after["sale_moves"] == 120 * 2
    assert after["drift"] == []
    assert after["on_hand"] == expected_on_hand(sold)
    # every reading once (the repeated one is not a second row), the cabinet counts the last: 900 g / 10 g
    assert after["readings"] == [[f"2026-03-02 10:{n:02d}:00+00:00", "posted"] for n in range(1, 11)]
    assert after["cabinet_on_hand"] == ["90.000"]
    # the worker outlived the outage, said so in a few lines and no traceback, and stops cleanly on SIGTERM
    assert "Traceback" not in worker_log, worker_log[-3000:]
    assert "Redis is back after" in worker_log
    assert len(outage_lines) <= 4, outage_lines  # seen gone (and how), not a line per retry
    assert worker_exit == 0, worker_log[-2000:]
    # the web: at most one warning per web process for the whole outage (2 gunicorn workers), no traceback
    web_log = web_logs[-1]
    assert "Traceback" not in web_log, web_log[-3000:]
    assert 1 <= web_log.count("Redis unreachable, wake-up") <= 2, web_log[-3000:]
