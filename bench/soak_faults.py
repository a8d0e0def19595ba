"""Soak with faults: registers pushing and live tills selling for a few
minutes while 2 workers feed 3 carts (tests/support/loadrun.py, as
bench/soak.py), on a private PostgreSQL and a private Redis
(tests/support/services.py) that a fault script restarts and stops, and
with a worker SIGKILLed and started again 5 s later (systemd's RestartSec).
Prints the zero-loss check (every receipt, entry and sale stored once, the
ledger invariant, each cart equal to the ledger, no failed stack entry;
exits 1 otherwise) and, per fault, the seconds from its end until every
change made before that end had reached the carts (no StockChange and no
waiting web-stack entry older than the fault's end).

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/soak_faults.py   # --seconds 150

The shared PostgreSQL and Redis are never touched: DATABASE_URL and
REDIS_URL only say that the real services are there to be copied."""
from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _setup import django_for_bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=int, default=10)
    parser.add_argument("--tills", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--first-fault-at", type=float, default=20)
    parser.add_argument("--between-faults", type=float, default=30)
    parser.add_argument("--redis-down", type=float, default=15)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("soak_faults skipped: it needs DATABASE_URL=postgres://... and REDIS_URL=redis://...")
        return
    from tests.support.services import private_postgres, private_redis

    # Removed at exit after the bench database is dropped (atexit runs the later registration first).
    services = ExitStack()
    atexit.register(services.close)
    pg = services.enter_context(private_postgres(durable_commits=True))  # a crash must not eat acknowledged sales
    redis = services.enter_context(private_redis())
    os.environ["DATABASE_URL"] = pg.database_url("postgres")
    os.environ["REDIS_URL"] = redis.url
    django_for_bench("soakfaults")
    result, faults = run(pg, redis, args)
    print(json.dumps({**result, "faults": faults}, indent=1, default=str))
    lost = (result["receipts_missing"] or result["receipts_stored"] != result["receipts_sent"]
            or result["entries_applied"] != result["entries_sent"] or result["live_sales_stored"] != result["sales"]
            or result["drift"] or not result["carts_converged"] or result["stack_failed"])
    print(f"receipts {result['receipts_stored']}/{result['receipts_sent']}, entries "
          f"{result['entries_applied']}/{result['entries_sent']}, live sales {result['live_sales_stored']}/"
          f"{result['sales']}, drift {len(result['drift'])}, carts equal to the ledger: {result['carts_converged']} "
          f"({result['settle_seconds']} s after the load), failed stack entries {result['stack_failed']}")
    for fault in faults:
        print(f"{fault['name']}: {fault['lasted']:.1f} s; every channel in sync {fault['in_sync_after']} s "
              "after it ended")
    print("lost or doubled: " + ("SOME" if lost else "0"))
    sys.exit(1 if lost else 0)


def run(pg, redis, args) -> tuple[dict, list[dict]]:
    from tests.support.loadrun import load_run

    faults: list[dict] = []

    def fault(name: str, act) -> None:
        began = time.monotonic()
        act()
        faults.append({"name": name, "lasted": time.monotonic() - began, "ended": datetime.now(UTC),
                       "in_sync_after": None})
        print(f"fault: {name} over", flush=True)

    def kill_worker(children, respawn_worker):
        children["rqworker1"].kill_hard()
        time.sleep(5)
        respawn_worker("rqworker1")

    def script(*, children, respawn_worker):
        time.sleep(args.first_fault_at)
        fault("PostgreSQL crash and restart", lambda: pg.restart("immediate"))
        time.sleep(args.between_faults)
        fault("worker SIGKILLed, started again 5 s later", lambda: kill_worker(children, respawn_worker))
        time.sleep(args.between_faults)
        fault(f"Redis down {args.redis_down:g} s", lambda: (redis.stop(), time.sleep(args.redis_down),
                                                             redis.start()))

    stop = threading.Event()
    monitor = threading.Thread(target=watch, args=(faults, stop), daemon=True)
    monitor.start()
    result = load_run(database_url=os.environ["DATABASE_URL"], redis_url=redis.url, registers=args.registers,
                      tills=args.tills, seconds=args.seconds, during=script)
    time.sleep(1)
    stop.set()
    monitor.join(10)
    return result, faults


def watch(faults: list[dict], stop: threading.Event) -> None:
    """For each fault over, the seconds until nothing from before its end waits for a cart."""
    from django.db import close_old_connections

    from carts.models import StackEntry
    from posinv.models import StockChange

    while not stop.wait(0.5):
        for fault in faults:
            if fault["in_sync_after"] is not None:
                continue
            try:
                close_old_connections()
                waiting = (StockChange.objects.filter(created_at__lte=fault["ended"]).exists()
                           or StackEntry.objects.filter(state__in=["waiting", "sending"],
                                                        created_at__lte=fault["ended"]).exists())
            except Exception:  # the database is restarting: try again
                continue
            if not waiting:
                fault["in_sync_after"] = round((datetime.now(UTC) - fault["ended"]).total_seconds(), 1)


if __name__ == "__main__":
    main()
