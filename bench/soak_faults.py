"""Soak with faults: registers pushing, live tills selling and a weighing
cabinet reporting for a few minutes while 2 workers feed 3 carts (tests/support/loadrun.py, as
bench/soak.py), on a private PostgreSQL and a private Redis
(tests/support/services.py) that a fault script restarts and stops, and
with a worker SIGKILLed and started again 5 s later (systemd's RestartSec),
after poison records (a stock level beyond the bound, as an old backup might
bring back, and a register batch with records no till writes).
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
    parser.add_argument("--cabinets", type=int, default=1)
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
    poisoned = result.get("poison") or {}
    stuck = not isinstance(poisoned, dict) or poisoned.get("register_failed_entries") != 2 or \
        poisoned.get("register_watermark") != poisoned.get("register_expected_watermark")
    readings_lost = result["cabinet_readings_stored"] < result["cabinet_posts"]
    lost = stuck or readings_lost or (result["receipts_missing"] or result["receipts_stored"] != result["receipts_sent"]
            or result["entries_applied"] != result["entries_sent"] or result["live_sales_stored"] != result["sales"]
            or result["drift"] or not result["carts_converged"] or result["stack_failed"])
    print(f"receipts {result['receipts_stored']}/{result['receipts_sent']}, entries "
          f"{result['entries_applied']}/{result['entries_sent']}, live sales {result['live_sales_stored']}/"
          f"{result['sales']}, drift {len(result['drift'])}, carts equal to the ledger: {result['carts_converged']} "
          f"({result['settle_seconds']} s after the load), failed stack entries {result['stack_failed']}")
    for fault in faults:
        print(f"{fault['name']}: {fault['lasted']:.1f} s; every channel in sync {fault['in_sync_after']} s "
              "after it ended")
    print(f"cabinet readings: {result['cabinet_readings_stored']} stored for {result['cabinet_posts']} "
          "accepted posts")
    print(f"poison: {poisoned}")
    print("lost, doubled or stuck: " + ("SOME" if lost else "0"))
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

    poison: dict = {}

    def inject_poison() -> None:
        """A level poisoned beyond the bound (as an old backup might bring
        back) and a register batch whose middle records no till writes: the
        dispatcher must skip that one pair and serve the rest, the register's
        later entries must arrive, and nothing else may stop."""
        poison.update(poison_inject())

    def script(*, children, respawn_worker):
        time.sleep(args.first_fault_at)
        fault("poison records (a level beyond the bound, a register batch with records no till writes)",
              inject_poison)
        time.sleep(args.between_faults)
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
                      tills=args.tills, cabinets=args.cabinets, seconds=args.seconds, during=script)
    time.sleep(1)
    stop.set()
    monitor.join(10)
    result.update(poison_check(poison))
    # The poisoned level has no moves behind it by design (an old backup's
    # value): the ledger check names it, and it is the injected fault, not a loss.
    result["drift_from_the_poison"] = [d for d in result["drift"] if POISON_SKU in d]
    result["drift"] = [d for d in result["drift"] if POISON_SKU not in d]
    return result, faults


POISON_SKU, POISON_REGISTER = "POISON-1", "RPOISON"


def poison_inject() -> dict:
    """Write the poison; returns what poison_check needs."""
    from decimal import Decimal

    from django.db import close_old_connections

    from pos.models import CashRegister
    from pos.services.apply import entries_receive
    from posinv.models import Article, Location, StockLevel
    from tests.pos.factories import receipt_entries

    close_old_connections()
    shop = Location.objects.get(code="LS1")
    article = Article.objects.create(sku=POISON_SKU, name="poisoned level")
    StockLevel.objects.create(article=article, location=shop, on_hand=Decimal("5000000000"))
    register = CashRegister.objects.create(code=POISON_REGISTER, location=shop, records_per_run=500)
    sku = Article.objects.exclude(sku=POISON_SKU).order_by("sku").values_list("sku", flat=True).first()
    entries = receipt_entries(1, "RP-000001", [(sku, "1", "1.00"), (sku, "1", "1.00"), (sku, "1", "1.00")])
    entries[2]["record"]["quantity"] = "1e400"
    entries[3]["record"]["barcode"] = "12\u000034"
    first = entries_receive(register_id=register.pk, entries=entries)
    later = entries_receive(register_id=register.pk, entries=receipt_entries(len(entries) + 1, "RP-000002",
                                                                             [(sku, "1", "1.00")]))
    # A sale on the poisoned pair (towards the bound, so the ledger takes it):
    # its change must be set aside, not stop the dispatcher.
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

    stock_moves_post(moves=[MoveSpec(kind="sale", idempotency_key="soak-poison-1", sku=POISON_SKU,
                                     location_id=shop.pk, quantity=Decimal(-1))], origin=StockOrigin("user", "soak"))
    return {"register_id": register.pk, "first_failed": first.failed, "later_applied": later.applied,
            "expected_watermark": len(entries) + 3}


def poison_check(poison: dict) -> dict:
    """The register carried on past its bad records; the poisoned pair was
    isolated (recorded, not delivered) while everything else was."""
    if not poison:
        return {"poison": "not injected"}
    from django.db import close_old_connections

    from pos.models import CashRegister
    from posinv.models import ChangeFailure

    close_old_connections()
    register = CashRegister.objects.get(pk=poison["register_id"])
    return {"poison": {
        "register_failed_entries": poison["first_failed"],
        "register_later_batch_applied": poison["later_applied"],
        "register_watermark": register.last_applied_entry_no,
        "register_expected_watermark": poison["expected_watermark"],
        "poisoned_pairs_recorded": ChangeFailure.objects.filter(article__sku=POISON_SKU).count(),
    }}


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
