"""A bounded load run against real processes, shared by the short CI test
(tests/reliability/test_load.py) and the long bench (bench/soak.py), and the
HTTP load clients every load bench drives its server with.

On the database Django is configured with in this process (the test
database, or a bench database), `load_run` seeds registers, live tills,
priced articles, opening stock and three fake carts (2 Shopify, 1
WooCommerce, real HTTP servers in this process) linked to the store; starts a
gunicorn server, `rqworker`s and the scheduler as child processes; then for
`seconds` lets `registers` clients push entry batches (the register contract)
and `tills` clients sell (the live sales API), each paced, retrying a failed
call with the same entries / Idempotency-Key as a real client does.
Afterwards it waits until the carts show the ledger, and reports throughput,
latency percentiles, each process's memory (RSS) at start and end, and the
loss check: every receipt, entry and sale present exactly once, the ledger
invariant, and each cart equal to the ledger.

The clients (`run_clients`: `LoadClient`s as threads, optionally spread over
several processes, each request built by a callable; every attempt an
`Outcome` (status, latency, ...)) and the figures made of them (`percentile`,
`ClientRun.summary`) serve the benches too, so that load figures are measured
and computed one way: bench/register_push.py pushes with them,
bench/cart_latency.py takes `percentile`, `fake_carts` and `fake_cart_holds`."""
from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import os
import random
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple
from urllib.parse import urlsplit

import requests

from tests.support.processes import free_port, spawn, wait_until

SKUS = [f"LD-{n:02d}" for n in range(20)]
OPENING = Decimal("10000000")
RECEIPTS_PER_PUSH = 5
LINES_PER_RECEIPT = 5
ENTRIES_PER_RECEIPT = LINES_PER_RECEIPT + 2  # the receipt, its lines, one payment line
CABINET_SKU, CABINET_PIECE_G, CABINET_TARE_G = "LDC-BOLT", Decimal("10"), Decimal("100")


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest of `values` with at least `share` (0 < share <= 1) of them at or
    below it; 0.0 for no values."""
    if not 0 < share <= 1:
        raise ValueError(f"a percentile's share is in (0, 1], not {share!r}")
    if not values:
        return 0.0
    ordered = sorted(values)
    # round(): 0.07 * 100 is 7.000000000000001 in binary floating point, whose ceiling would skip a rank.
    return ordered[max(0, math.ceil(round(share * len(ordered), 9)) - 1)]


@dataclass(frozen=True)
class Request:
    """One HTTP request of a load client; `path` is absolute (`/api/v1/...`)."""

    method: str
    path: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def post_json(cls, path: str, payload: object, headers: Mapping[str, str]) -> Request:
        return cls("POST", path, json.dumps(payload).encode(), {**headers, "Content-Type": "application/json"})


class Outcome(NamedTuple):
    """One attempt of one request: its HTTP status (0 when no answer came: refused, reset, timed out) and latency
    in seconds, the index of the client that made it, which of the client's requests it was (`n`, from 0), and for
    status 0 the name of the exception (`ConnectionRefusedError`, `TimeoutError`, ...)."""

    status: int
    latency: float
    client: int
    n: int
    error: str = ""


@dataclass(frozen=True)
class LoadClient:
    """One client of a load (a register, a till): what it sends and how.

    `request(n)` builds its n-th request (n from 0, called in order) or returns None when the client is done. An
    attempt counts as accepted when its status is in `accept`; any other is sent again unchanged (a device resends
    the same entries or Idempotency-Key) up to `attempts` tries in all, `retry_pause` seconds apart. `every` paces
    the client: seconds from the start of one request to the start of the next (0: at once); `offset` delays its
    first, to stagger clients. `answered(outcome, body)` sees every attempt with the answer's body (b"" when none
    came) and may raise to stop this client; `run_clients` raises it again once every client has finished. With
    several client processes it runs in the client's process, so it should raise rather than record."""

    request: Callable[[int], Request | None]
    accept: Collection[int] = (200, 201)
    attempts: int = 1
    retry_pause: float = 0.5
    every: float = 0.0
    offset: float = 0.0
    answered: Callable[[Outcome, bytes], None] | None = None


@dataclass(frozen=True)
class Summary:
    """The figures of a set of attempts: the accepted ones' count, rate and latencies (seconds, sorted), and the
    others counted by status (`"503"`) or, when no answer came, by exception name."""

    accepted: int
    seconds: float
    latencies: list[float]
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0

    def ms(self, share: float) -> float:
        """The `share` percentile of the accepted attempts' latencies, in milliseconds."""
        return percentile(self.latencies, share) * 1000


@dataclass(frozen=True)
class ClientRun:
    """Every attempt of a run of load clients, and its wall-clock duration in seconds."""

    outcomes: list[Outcome]
    seconds: float

    def summary(self, *, accept: Collection[int] = (200, 201), clients: Collection[int] | None = None) -> Summary:
        """The figures of the attempts of `clients` (indices; all when None), counting `accept` as accepted."""
        chosen = [o for o in self.outcomes if clients is None or o.client in clients]
        errors: dict[str, int] = {}
        for outcome in chosen:
            if outcome.status not in accept:
                key = outcome.error if outcome.status == 0 else str(outcome.status)
                errors[key] = errors.get(key, 0) + 1
        latencies = sorted(o.latency for o in chosen if o.status in accept)
        return Summary(accepted=len(latencies), seconds=self.seconds, latencies=latencies, errors=errors)


def _attempt(host: str, port: int, request: Request, timeout: float) -> tuple[int, bytes, str, float]:
    """Send `request` once: (status, body, exception name, latency in seconds)."""
    # A fresh connection per request: gunicorn's sync workers close every
    # connection after its answer, so reusing one would only reconnect anyway,
    # and a fresh one never meets a socket the server closed while idle.
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.connect()
        # As requests (urllib3) does: without it, Nagle's algorithm holds a
        # request's last segment until the server's delayed ACK, ~40 ms a call.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.request(request.method, request.path, body=request.body, headers=dict(request.headers))
        response = connection.getresponse()
        body = response.read()
        status, error = response.status, ""
    except (OSError, http.client.HTTPException) as exc:
        status, body, error = 0, b"", type(exc).__name__
    finally:
        connection.close()
    return status, body, error, time.perf_counter() - started


def _client_loop(index: int, client: LoadClient, *, host: str, port: int, deadline: float | None,
                 timeout: float) -> list[Outcome]:
    outcomes: list[Outcome] = []
    time.sleep(client.offset)
    n = 0
    while deadline is None or time.monotonic() < deadline:
        began = time.monotonic()
        request = client.request(n)
        if request is None:
            break
        for attempt in range(client.attempts):
            if attempt:
                time.sleep(client.retry_pause)
            status, body, error, latency = _attempt(host, port, request, timeout)
            outcome = Outcome(status, latency, index, n, error)
            outcomes.append(outcome)
            if client.answered is not None:
                client.answered(outcome, body)
            if status in client.accept:
                break
        n += 1
        time.sleep(max(0.0, client.every - (time.monotonic() - began)))
    return outcomes


def _client_threads(indexed: list[tuple[int, LoadClient]], **loop) -> list[Outcome]:
    """Run each client in a thread of its own; the first exception a client raised is raised again after all end."""
    with ThreadPoolExecutor(max_workers=len(indexed)) as pool:
        futures = [pool.submit(_client_loop, index, client, **loop) for index, client in indexed]
    return [outcome for future in futures for outcome in future.result()]


def _client_process(indexed: list[tuple[int, LoadClient]], results, loop: dict) -> None:
    try:
        results.put(("ok", _client_threads(indexed, **loop)))
    except BaseException:  # noqa: B036 (the parent reports it; a client may stop the run with SystemExit)
        results.put(("failed", traceback.format_exc()))


def run_clients(clients: Sequence[LoadClient], *, url: str, seconds: float | None = None, timeout: float = 60,
                processes: int = 1) -> ClientRun:
    """Run `clients` against the server at `url` (http://host:port) until each is done or, with `seconds`, until
    that many seconds have passed (a request under way is finished, with its retries). With `processes` > 1 the
    clients are spread over that many forked processes (so that the clients' own Python work is not held to one
    core by the GIL), each running one thread per client; otherwise they are threads of this process."""
    if not clients:
        raise ValueError("run_clients needs at least one client")
    if processes < 1:
        raise ValueError(f"processes must be 1 or more, not {processes!r}")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"run_clients needs an http://host:port URL, not {url!r}")
    indexed = list(enumerate(clients))
    started = time.monotonic()
    # CLOCK_MONOTONIC is one clock for the whole machine, so forked clients share this deadline.
    loop = {"host": parts.hostname, "port": parts.port, "timeout": timeout,
            "deadline": None if seconds is None else started + seconds}
    if processes == 1:
        outcomes = _client_threads(indexed, **loop)
        return ClientRun(outcomes=outcomes, seconds=time.monotonic() - started)
    # fork, not spawn: clients hold closures, which a spawned process could not be handed.
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    share = -(-len(indexed) // processes)
    children = [context.Process(target=_client_process, args=(indexed[i:i + share], results, loop))
                for i in range(0, len(indexed), share)]
    for child in children:
        child.start()
    answers = [results.get() for _ in children]
    for child in children:
        child.join()
    elapsed = time.monotonic() - started
    failures = [detail for kind, detail in answers if kind == "failed"]
    if failures:
        raise RuntimeError("a client process failed:\n" + failures[0])
    return ClientRun(outcomes=[o for _, found in answers for o in found], seconds=elapsed)


def register_entries(code: str, *, receipts: int, first_receipt: int, first_entry: int,
                     skus: Sequence[str] = SKUS) -> list[dict]:
    """Entries of `receipts` receipts of register `code` from receipt number `first_receipt` on, numbered from
    `first_entry`, as a node writes them (the register contract): per receipt one `receipt`, LINES_PER_RECEIPT
    `receipt_line`s of `skus` in turn and one `payment_line`."""
    entries, number = [], first_entry
    for n in range(first_receipt, first_receipt + receipts):
        receipt_no = f"{code}-{n:07d}"
        lines = [(skus[(n + i) % len(skus)], 1 + (n + i) % 3) for i in range(LINES_PER_RECEIPT)]
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


def fake_carts(*, location, skus: Sequence[str], available: int, prefix: str = "") -> tuple[list, list]:
    """Three fake carts on real HTTP in this process (2 Shopify, 1 WooCommerce), started, each holding `available`
    of every one of `skus`; and their ExternalStores (`<prefix>shop0`, `<prefix>shop1`, `<prefix>woo`) synchronizing
    `location`, products linked by SKU. Returns (stores, fakes) in the same order; the caller stops the fakes."""
    from carts.models import ExternalStore
    from carts.services.links import links_match
    from tests.fakes.shopify import LOCATION, FakeShopify
    from tests.fakes.woocommerce import FakeWooCommerce

    fakes = [FakeShopify().start(), FakeShopify().start(), FakeWooCommerce().start()]
    stores = []
    for n, fake in enumerate(fakes):
        for sku in skus:
            if isinstance(fake, FakeShopify):
                fake.add_variant(sku=sku, available=available)
            else:
                fake.add_product(sku=sku, stock=available)
        if isinstance(fake, FakeShopify):
            store = ExternalStore.objects.create(code=f"{prefix}shop{n}", name=f"Shopify {n}", platform="shopify",
                                                 url=fake.url, sync_inventory=True, params={"location_id": LOCATION},
                                                 secrets={"access_token": fake.token})
        else:
            store = ExternalStore.objects.create(code=f"{prefix}woo", name="Woo", platform="woocommerce", url=fake.url,
                                                 sync_inventory=True,
                                                 secrets={"consumer_key": fake.key, "consumer_secret": fake.secret})
        store.locations.add(location)
        links_match(store=store)
        stores.append(store)
    return stores, fakes


def fake_cart_holds(fake, sku: str) -> int | None:
    """The quantity fake cart `fake` (of `fake_carts`) holds of `sku` now."""
    from tests.fakes.woocommerce import FakeWooCommerce

    return fake.stock(sku) if isinstance(fake, FakeWooCommerce) else fake.available(sku)


def _seed(*, registers: int, tills: int, cabinets: int = 0):
    """Rows and tokens in this process's database; returns (register tokens, till tokens, cabinet tokens,
    stores, fakes)."""
    from datetime import date

    from carts.models import CartSettings
    from pos.models import CashRegister
    from posinv.models import Article, Location, Price, PriceGroup
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
    from posinv.services.tokens import token_issue

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
    cabinet_tokens = {}
    if cabinets:
        from cabinets.models import Tray
        from cabinets.services.provisioning import cabinet_create

        bolt = Article.objects.create(sku=CABINET_SKU, name="Load bolt", unit_weight_g=CABINET_PIECE_G)
        for n in range(1, cabinets + 1):
            cabinet, token = cabinet_create(code=f"LC{n:03d}", location_code=f"LC{n:03d}-LOC", name=f"Load cabinet {n}")
            Tray.objects.create(cabinet=cabinet, tray_id="T-1", article=bolt, tare_g=CABINET_TARE_G,
                                threshold=Decimal("5"))
            cabinet_tokens[cabinet.code] = token
    stores, fakes = fake_carts(location=shop, skus=SKUS, available=int(OPENING), prefix="l")
    return reg_tokens, till_tokens, cabinet_tokens, stores, fakes


def _cabinet_readings_stored(cabinet_tokens) -> int:
    if not cabinet_tokens:
        return 0
    from cabinets.models import WeightReading

    return WeightReading.objects.filter(cabinet__code__in=list(cabinet_tokens)).count()


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

    ids = dict(Article.objects.filter(sku__in=SKUS).values_list("sku", "pk"))
    wrong = []
    for store, fake in zip(stores, fakes, strict=True):
        ours = store_available(store=store, article_ids=ids.values())
        for sku, pk in ids.items():
            theirs = fake_cart_holds(fake, sku)
            if theirs != ours[pk]:
                wrong.append((store.code, sku, theirs, ours[pk]))
    return wrong


def _register_client(code: str, token: str, *, every: float, offset: float) -> LoadClient:
    """A push register: RECEIPTS_PER_PUSH new receipts per push, resent unchanged until accepted, as a node does."""
    headers = {"Authorization": f"Token {token}"}
    per_push = RECEIPTS_PER_PUSH * ENTRIES_PER_RECEIPT

    def request(n: int) -> Request:
        entries = register_entries(code, receipts=RECEIPTS_PER_PUSH, first_receipt=1 + n * RECEIPTS_PER_PUSH,
                                   first_entry=1 + n * per_push)
        return Request.post_json(f"/api/v1/registers/{code}/entries/", {"entries": entries}, headers)

    return LoadClient(request=request, accept=(200,), attempts=20, every=every, offset=offset)


def _cabinet_client(code: str, token: str, *, every: float, offset: float) -> LoadClient:
    """A weighing cabinet: its one tray read every `every` s, each weight twice (a stable reading), the
    count stepping down and up again as pieces are taken and put back."""
    headers = {"Authorization": f"Token {token}"}

    def request(n: int) -> Request:
        pieces = 200 - (n // 2) % 40
        grams = CABINET_TARE_G + CABINET_PIECE_G * pieces
        read_at = datetime.now(UTC).isoformat()
        return Request.post_json(f"/api/v1/cabinets/{code}/readings/",
                                 {"readings": [{"tray_id": "T-1", "weight_g": str(grams), "read_at": read_at}]},
                                 headers)

    return LoadClient(request=request, accept=(200,), attempts=20, every=every, offset=offset)


def _till_client(code: str, token: str, *, every: float, offset: float) -> LoadClient:
    """A live till: a sale of 1 to 4 random lines per request, resent with its Idempotency-Key until accepted."""
    rng = random.Random(code)

    def request(n: int) -> Request:
        number = n + 1
        lines = [{"sku": rng.choice(SKUS), "quantity": str(rng.randint(1, 3)), "price": "2.50"}
                 for _ in range(rng.randint(1, 4))]
        body = {"receipt_no": f"{code}-{number:07d}", "lines": lines, "payments": [
            {"method": "card", "amount": f"{sum(int(x['quantity']) for x in lines) * 2.5:.2f}"}]}
        return Request.post_json("/api/v1/sales/", body,
                                 {"Authorization": f"Token {token}", "Idempotency-Key": f"{code}-{number}"})

    return LoadClient(request=request, accept=(201,), attempts=20, every=every, offset=offset)


def load_run(*, database_url: str, redis_url: str, registers: int, tills: int, seconds: float, cabinets: int = 0,
             workers: int = 2,
             web_workers: int = 3, push_every: float = 2.0, sell_every: float = 1.0, settle_timeout: float = 240,
             say=print, during: Callable[..., None] | None = None) -> dict:
    """Run the load; returns the figures (see the module docstring). `during(children=, respawn_worker=)`,
    when given, runs in a thread while the clients run (bench/soak_faults.py kills and restarts things);
    `respawn_worker(name)` starts that worker again, as systemd would."""
    from django.db import close_old_connections
    from django.db.models import Count

    from carts.models import StackEntry
    from pos.models import Receipt, SyncEntry
    from posinv.models import StockChange
    from posinv.selectors import ledger_drift
    from retail.models import LiveSale

    reg_tokens, till_tokens, cabinet_tokens, stores, fakes = _seed(registers=registers, tills=tills,
                                                                   cabinets=cabinets)
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
    with ExitStack() as stack:
        for fake in fakes:
            stack.callback(fake.stop)
        children = {"web": spawn([sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
                                  f"127.0.0.1:{port}", "--workers", str(web_workers), "--timeout", "120"],
                                 env=env, name="load-web")}
        for n in range(workers):
            children[f"rqworker{n + 1}"] = spawn(
                [sys.executable, "manage.py", "run_worker", "high", "default", "low"], env=env,
                name=f"load-worker{n + 1}")
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
        clients = [_register_client(code, token, every=push_every, offset=i * push_every / registers)
                   for i, (code, token) in enumerate(reg_tokens.items())]
        clients += [_till_client(code, token, every=sell_every, offset=i * sell_every / tills)
                    for i, (code, token) in enumerate(till_tokens.items())]
        clients += [_cabinet_client(code, token, every=push_every, offset=i * push_every / max(cabinets, 1))
                    for i, (code, token) in enumerate(cabinet_tokens.items())]
        fault_thread = None
        if during is not None:
            def respawn_worker(name: str) -> None:
                children[name] = spawn([sys.executable, "manage.py", "run_worker", "high", "default", "low"],
                                       env=env, name=f"load-{name}-again")
                stack.callback(children[name].stop)

            fault_thread = threading.Thread(target=during, kwargs={"children": children,
                                                                   "respawn_worker": respawn_worker})
            fault_thread.start()
        run = run_clients(clients, url=url, seconds=seconds)
        if fault_thread is not None:
            fault_thread.join()
        elapsed = run.seconds
        pushes = run.summary(accept=(200,), clients=range(registers))
        sales = run.summary(accept=(201,), clients=range(registers, registers + tills))
        readings = run.summary(accept=(200,), clients=range(registers + tills, len(clients)))
        receipts_sent = {code: run.summary(accept=(200,), clients=(i,)).accepted * RECEIPTS_PER_PUSH
                         for i, code in enumerate(reg_tokens)}
        memory_end_load = {name: _rss(child) for name, child in children.items()}
        alive = {name: child.alive() for name, child in children.items()}
        settle_began = time.monotonic()

        def settled() -> bool:
            close_old_connections()  # the database may have restarted under a kept connection
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
            "pushes": pushes.accepted,
            "sales": sales.accepted,
            "lines": pushes.accepted * RECEIPTS_PER_PUSH * LINES_PER_RECEIPT,
            "push_per_s": round(pushes.rate, 1),
            "lines_per_s": round(pushes.rate * RECEIPTS_PER_PUSH * LINES_PER_RECEIPT, 1),
            "sales_per_s": round(sales.rate, 1),
            "cabinet_posts": readings.accepted,
            "cabinet_readings_stored": _cabinet_readings_stored(cabinet_tokens),
            "push_p50_ms": round(pushes.ms(0.5), 1),
            "push_p99_ms": round(pushes.ms(0.99), 1),
            "sale_p50_ms": round(sales.ms(0.5), 1),
            "sale_p99_ms": round(sales.ms(0.99), 1),
            "errors": {**{f"push {k}": v for k, v in pushes.errors.items()},
                       **{f"sale {k}": v for k, v in sales.errors.items()}},
            "receipts_sent": sum(receipts_sent.values()),
            "receipts_stored": sum(stored_receipts.values()),
            "receipts_missing": {c: receipts_sent[c] - stored_receipts.get(c, 0) for c in reg_tokens
                                 if receipts_sent[c] != stored_receipts.get(c, 0)},
            "entries_applied": applied,
            "entries_sent": sum(receipts_sent.values()) * ENTRIES_PER_RECEIPT,
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
