"""A bounded load run against real processes, shared by the short CI test
(tests/reliability/test_load.py) and the long bench (bench/soak.py).

On the database Django is configured with in this process (the test
database, or a bench database), it seeds registers, live tills, priced
articles, opening stock and three fake carts (2 Shopify, 1 WooCommerce,
real HTTP servers in this process) linked to the store; starts a gunicorn
server, `rqworker`s and the scheduler as child processes; then for
`seconds` lets `registers` threads push entry batches (the register
contract) and `tills` threads sell (the live sales API), each paced, retrying
a failed call with the same entries / Idempotency-Key as a real client does.
Afterwards it waits until the carts show the ledger, and reports throughput,
latency percentiles, each process's memory (RSS) at start and end, and the
loss check: every receipt, entry and sale present exactly once, the ledger
invariant, and each cart equal to the ledger."""
from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal

import requests

from tests.support.processes import free_port, spawn, wait_until

SKUS = [f"LD-{n:02d}" for n in range(20)]
OPENING = Decimal("10000000")
RECEIPTS_PER_PUSH = 5
LINES_PER_RECEIPT = 5


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    receipts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lines: int = 0
    sales: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _entries(code: str, *, first_receipt: int, first_entry: int) -> list[dict]:
    """RECEIPTS_PER_PUSH receipts of register `code` as a node writes them (the register contract)."""
    entries, number = [], first_entry
    for n in range(first_receipt, first_receipt + RECEIPTS_PER_PUSH):
        receipt_no = f"{code}-{n:07d}"
        lines = [(SKUS[(n + i) % len(SKUS)], 1 + (n + i) % 3) for i in range(LINES_PER_RECEIPT)]
        total = f"{sum(q for _, q in lines) * Decimal('2.50'):.2f}"
        records = [("receipt", f"receipt:{receipt_no}", {
            "receipt_no": receipt_no, "process_no": f"{code}-P1", "created_at": "2026-03-02T09:00:00+00:00",
            "customer_no": None, "total": total, "currency": "EUR"})]
        records += [("receipt_line", f"receipt_line:{receipt_no}:{i}", {
            "receipt_no": receipt_no, "line_no": i, "sku": sku, "barcode": "", "quantity": f"{q}.000",
            "unit_price": "2.50", "discount": "0.00"}) for i, (sku, q) in enumerate(lines, 1)]
        records.append(("payment_line", f"payment_line:{receipt_no}:1",
                        {"receipt_no": receipt_no, "line_no": 1, "method": "card", "amount": total}))
        for table, record_id, record in records:
            entries.append({"entry_no": number, "table": table, "record_id": record_id, "record": record})
            number += 1
    return entries


def _seed(*, registers: int, tills: int):
    """Rows and tokens in this process's database; returns (register tokens, till tokens, stores, fakes)."""
    from datetime import date

    from carts.models import CartSettings, ExternalStore
    from carts.services.links import links_match
    from pos.models import CashRegister
    from posinv.models import Article, Location, Price, PriceGroup
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
    from posinv.services.tokens import token_issue
    from tests.fakes.shopify import LOCATION, FakeShopify
    from tests.fakes.woocommerce import FakeWooCommerce

    CartSettings.objects.update_or_create(pk=1, defaults={"synch_qoh": True, "max_attempts": 100})
    group = PriceGroup.objects.create(code="LOAD", name="Load")
    shop = Location.objects.create(code="LS1", name="Load store")
    Article.objects.bulk_create([Article(sku=sku, name=sku) for sku in SKUS])
    Price.objects.bulk_create([Price(article=a, group=group, amount=Decimal("2.50"), valid_from=date(2020, 1, 1))
                               for a in Article.objects.filter(sku__in=SKUS)])
    stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"load-open:{sku}", sku=sku,
                                     location_id=shop.pk, quantity=OPENING) for sku in SKUS],
                     origin=StockOrigin("user", "load"))
    reg_tokens, till_tokens = {}, {}
    for n in range(1, registers + 1):
        code = f"LR{n:03d}"
        CashRegister.objects.create(code=code, location=shop, records_per_run=500)
        reg_tokens[code] = token_issue(kind="register", subject=code)
    for n in range(1, tills + 1):
        code = f"LT{n:03d}"
        CashRegister.objects.create(code=code, location=shop, price_group=group)
        till_tokens[code] = token_issue(kind="register", subject=code)
    fakes = [FakeShopify().start(), FakeShopify().start(), FakeWooCommerce().start()]
    stores = []
    for n, fake in enumerate(fakes):
        for sku in SKUS:
            if isinstance(fake, FakeShopify):
                fake.add_variant(sku=sku, available=int(OPENING))
            else:
                fake.add_product(sku=sku, stock=int(OPENING))
        if isinstance(fake, FakeShopify):
            store = ExternalStore.objects.create(code=f"lshop{n}", name=f"Shopify {n}", platform="shopify",
                                                 url=fake.url, sync_inventory=True, params={"location_id": LOCATION},
                                                 secrets={"access_token": fake.token})
        else:
            store = ExternalStore.objects.create(code="lwoo", name="Woo", platform="woocommerce", url=fake.url,
                                                 sync_inventory=True,
                                                 secrets={"consumer_key": fake.key, "consumer_secret": fake.secret})
        store.locations.add(shop)
        links_match(store=store)
        stores.append(store)
    return reg_tokens, till_tokens, stores, fakes


def _rss(child) -> int:
    """Resident memory of a child and its own children (gunicorn's workers), in bytes."""
    import psutil

    try:
        proc = psutil.Process(child.pid)
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0


def cart_mismatches(stores, fakes) -> list:
    from carts.services.stores import store_available
    from posinv.models import Article
    from tests.fakes.woocommerce import FakeWooCommerce

    ids = dict(Article.objects.filter(sku__in=SKUS).values_list("sku", "pk"))
    wrong = []
    for store, fake in zip(stores, fakes, strict=True):
        ours = store_available(store=store, article_ids=ids.values())
        for sku, pk in ids.items():
            theirs = fake.stock(sku) if isinstance(fake, FakeWooCommerce) else fake.available(sku)
            if theirs != ours[pk]:
                wrong.append((store.code, sku, theirs, ours[pk]))
    return wrong


def load_run(*, database_url: str, redis_url: str, registers: int, tills: int, seconds: float, workers: int = 2,
             web_workers: int = 3, push_every: float = 2.0, sell_every: float = 1.0, settle_timeout: float = 240,
             say=print) -> dict:
    """Run the load; returns the figures (see the module docstring)."""
    from django.db.models import Count

    from carts.models import StackEntry
    from pos.models import Receipt, SyncEntry
    from posinv.models import StockChange
    from posinv.selectors import ledger_drift
    from retail.models import LiveSale

    reg_tokens, till_tokens, stores, fakes = _seed(registers=registers, tills=tills)
    from django.db import connection

    connection.close()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "posinv-load", "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "POSINV_VAR_DIR": os.environ.get("POSINV_VAR_DIR", "/tmp"), "POSINV_SCHEDULER_TICK_SECONDS": "1",
        "POSINV_CHANGES_SWEEP_SECONDS": "2", "PYTHONUNBUFFERED": "1",
    }
    if not database_url:
        env.pop("DATABASE_URL")
    # The keys the seeding process encrypted the stores' credentials with (its
    # own or derived from its SECRET_KEY), so they open in the workers.
    from posinv.crypto import ENV_KEYS, encryption_keys

    env[ENV_KEYS] = ",".join(key.decode("ascii") for key in encryption_keys())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tally = Tally()
    with ExitStack() as stack:
        for fake in fakes:
            stack.callback(fake.stop)
        children = {"web": spawn([sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
                                  f"127.0.0.1:{port}", "--workers", str(web_workers), "--timeout", "120"],
                                 env=env, name="load-web")}
        for n in range(workers):
            children[f"rqworker{n + 1}"] = spawn(
                [sys.executable, "manage.py", "rqworker", "high", "default", "low", "--worker-class",
                 "rq.worker.SimpleWorker"], env=env, name=f"load-worker{n + 1}")
        children["scheduler"] = spawn([sys.executable, "manage.py", "run_scheduler"], env=env,
                                      name="load-scheduler")
        for child in children.values():
            stack.callback(child.stop)
        first = next(iter(reg_tokens))
        wait_until(lambda: requests.get(f"{url}/api/v1/registers/{first}/settings/", timeout=2,
                                        headers={"Authorization": f"Token {reg_tokens[first]}"}).ok,
                   timeout=90, message="the load server")
        time.sleep(1)
        memory_start = {name: _rss(child) for name, child in children.items()}
        say(f"load: {registers} registers pushing every {push_every:g} s, {tills} tills selling every "
            f"{sell_every:g} s, {workers} workers, {len(fakes)} carts, {seconds:g} s ...")
        deadline = time.monotonic() + seconds

        def register_loop(code: str, offset: float) -> None:
            session = requests.Session()
            headers = {"Authorization": f"Token {reg_tokens[code]}", "Content-Type": "application/json"}
            receipt_no, entry_no = 1, 1
            time.sleep(offset)
            while time.monotonic() < deadline:
                began = time.monotonic()
                entries = _entries(code, first_receipt=receipt_no, first_entry=entry_no)
                body = json.dumps({"entries": entries})
                for _attempt in range(20):  # as a node does: the same entries again until accepted
                    try:
                        t0 = time.monotonic()
                        answer = session.post(f"{url}/api/v1/registers/{code}/entries/", data=body,
                                              headers=headers, timeout=60)
                        took = time.monotonic() - t0
                        if answer.status_code == 200:
                            with tally.lock:
                                tally.latencies["push"].append(took)
                                tally.receipts[code] += RECEIPTS_PER_PUSH
                                tally.lines += RECEIPTS_PER_PUSH * LINES_PER_RECEIPT
                            break
                        with tally.lock:
                            tally.errors[f"push {answer.status_code}"] += 1
                    except requests.RequestException as exc:
                        with tally.lock:
                            tally.errors[f"push {type(exc).__name__}"] += 1
                    time.sleep(0.5)
                receipt_no += RECEIPTS_PER_PUSH
                entry_no += len(entries)
                time.sleep(max(0.0, push_every - (time.monotonic() - began)))

        def till_loop(code: str, offset: float) -> None:
            session = requests.Session()
            rng = random.Random(code)
            n = 0
            time.sleep(offset)
            while time.monotonic() < deadline:
                began = time.monotonic()
                n += 1
                lines = [{"sku": rng.choice(SKUS), "quantity": str(rng.randint(1, 3)), "price": "2.50"}
                         for _ in range(rng.randint(1, 4))]
                body = {"receipt_no": f"{code}-{n:07d}", "lines": lines, "payments": [
                    {"method": "card", "amount": f"{sum(int(x['quantity']) for x in lines) * 2.5:.2f}"}]}
                headers = {"Authorization": f"Token {till_tokens[code]}", "Idempotency-Key": f"{code}-{n}"}
                for _attempt in range(20):
                    try:
                        t0 = time.monotonic()
                        answer = session.post(f"{url}/api/v1/sales/", json=body, headers=headers, timeout=60)
                        took = time.monotonic() - t0
                        if answer.status_code == 201:
                            with tally.lock:
                                tally.latencies["sale"].append(took)
                                tally.sales += 1
                            break
                        with tally.lock:
                            tally.errors[f"sale {answer.status_code}"] += 1
                    except requests.RequestException as exc:
                        with tally.lock:
                            tally.errors[f"sale {type(exc).__name__}"] += 1
                    time.sleep(0.5)
                time.sleep(max(0.0, sell_every - (time.monotonic() - began)))

        threads = [threading.Thread(target=register_loop, args=(code, i * push_every / registers))
                   for i, code in enumerate(reg_tokens)]
        threads += [threading.Thread(target=till_loop, args=(code, i * sell_every / tills))
                    for i, code in enumerate(till_tokens)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        memory_end_load = {name: _rss(child) for name, child in children.items()}
        alive = {name: child.alive() for name, child in children.items()}
        settle_began = time.monotonic()

        def settled() -> bool:
            if StockChange.objects.exists() or StackEntry.objects.filter(state__in=["waiting", "sending"]).exists():
                return False
            return cart_mismatches(stores, fakes) == []

        try:
            wait_until(settled, timeout=settle_timeout, interval=1, message="the carts to show the ledger")
            converged = True
        except AssertionError:
            converged = False
        settle_seconds = time.monotonic() - settle_began
        memory_end = {name: _rss(child) for name, child in children.items()}
        stored_receipts = dict(
            Receipt.objects.filter(register__code__in=list(reg_tokens)).values_list("register__code")
            .annotate(n=Count("id"))
        )
        applied = SyncEntry.objects.filter(register__code__in=list(reg_tokens), state="applied").count()
        result = {
            "seconds": round(elapsed, 1),
            "pushes": len(tally.latencies["push"]),
            "sales": tally.sales,
            "lines": tally.lines,
            "push_per_s": round(len(tally.latencies["push"]) / elapsed, 1),
            "lines_per_s": round(tally.lines / elapsed, 1),
            "sales_per_s": round(tally.sales / elapsed, 1),
            "push_p50_ms": round(percentile(tally.latencies["push"], 0.5) * 1000, 1),
            "push_p99_ms": round(percentile(tally.latencies["push"], 0.99) * 1000, 1),
            "sale_p50_ms": round(percentile(tally.latencies["sale"], 0.5) * 1000, 1),
            "sale_p99_ms": round(percentile(tally.latencies["sale"], 0.99) * 1000, 1),
            "errors": dict(tally.errors),
            "receipts_sent": sum(tally.receipts.values()),
            "receipts_stored": sum(stored_receipts.values()),
            "receipts_missing": {c: tally.receipts[c] - stored_receipts.get(c, 0) for c in reg_tokens
                                 if tally.receipts[c] != stored_receipts.get(c, 0)},
            "entries_applied": applied,
            "entries_sent": sum(tally.receipts.values()) * (LINES_PER_RECEIPT + 2),
            "live_sales_stored": LiveSale.objects.filter(register__code__in=list(till_tokens)).count(),
            "drift": [str(d) for d in ledger_drift()],
            "carts_converged": converged,
            "cart_mismatches": cart_mismatches(stores, fakes)[:5],
            "settle_seconds": round(settle_seconds, 1),
            "stack_failed": StackEntry.objects.filter(state="failed").count(),
            "cart_calls": sum(len(f.requests) for f in fakes),
            "memory_mb_start": {k: round(v / 2**20, 1) for k, v in memory_start.items()},
            "memory_mb_end_of_load": {k: round(v / 2**20, 1) for k, v in memory_end_load.items()},
            "memory_mb_end": {k: round(v / 2**20, 1) for k, v in memory_end.items()},
            "processes_alive": alive,
        }
    return result
