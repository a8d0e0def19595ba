"""Cabinet readings over real HTTP: batched pushes vs one reading per request.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_c REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/cabinet_readings.py [--readings 100000] [--trays 5000] [--batch 500]

One cabinet with 5,000 trays (one article each, 10 g a piece) on a fresh
database; a gunicorn server (2 sync workers) and, with REDIS_URL, one RQ
SimpleWorker draining the change outbox, as in production. Then, in the same
run and with the same 2 client threads:

- batched: 100,000 readings (20 rounds over every tray, each a new count)
  pushed 500 per request;
- naive: one reading per request, 2,000 readings of a further round (the
  rate is what matters; 100,000 of them would take most of an hour).

Every reading changes its tray's count, so every one posts a ledger move:
the worst case (in the field most readings are "unchanged"). Prints
readings/s of both and the ratio, and checks the ledger afterwards
(on_hand of every article equals its tray and the sum of its moves)."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._setup import CpuMeter, database_backends, django_for_bench, process_tree  # noqa: E402

T0 = datetime(2026, 5, 3, 6, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--trays", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--naive", type=int, default=2000, help="readings sent one per request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client threads")
    parser.add_argument("--server-workers", type=int, default=2, help="gunicorn sync workers")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "")
    vendor = django_for_bench("cabinets")

    import requests
    from django.db import connection

    from cabinets.models import Tray
    from cabinets.services.provisioning import cabinet_create
    from posinv.models import Article
    from tests.support.processes import free_port, spawn, wait_until

    print(f"database: {vendor}; jobs: {'RQ on ' + redis_url if redis_url else 'in-process'}; "
          f"{os.cpu_count()} cores (shared with the client), load {os.getloadavg()[0]:.1f}; "
          f"{args.server_workers} gunicorn workers, {args.clients} clients")
    Article.objects.bulk_create(
        [Article(sku=f"B-{i:05d}", name=f"bench {i}", unit_weight_g=Decimal("10")) for i in range(args.trays)],
        batch_size=1000,
    )
    articles = dict(Article.objects.filter(sku__startswith="B-").values_list("sku", "pk"))
    cabinet, token = cabinet_create(code="BENCH", location_code="BENCH-LOC")
    Tray.objects.bulk_create(
        [
            Tray(cabinet=cabinet, tray_id=f"T-{i:05d}", article_id=articles[f"B-{i:05d}"], tare_g=Decimal("200"),
                 threshold=Decimal("5"))
            for i in range(args.trays)
        ],
        batch_size=1000,
    )
    connection.close()

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "posinv-bench", "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1", "DATABASE_URL": os.environ["DATABASE_URL"], "LOG_LEVEL": "WARNING",
        "POSINV_VAR_DIR": os.environ.get("POSINV_VAR_DIR", "/tmp"),
    }
    if redis_url:
        # Give the bench a Redis database number of its own: its worker takes any job queued there.
        env["REDIS_URL"] = redis_url
    port = free_port()
    server = spawn(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.server_workers), "--timeout", "120"],
        env=env, name="bench-cabinets-server",
    )
    worker = None
    if redis_url:
        worker = spawn(
            [sys.executable, "manage.py", "rqworker", "high", "default", "--worker-class", "rq.worker.SimpleWorker"],
            env=env, name="bench-cabinets-worker",
        )
    url = f"http://127.0.0.1:{port}/api/v1/cabinets/BENCH/readings/"
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    try:
        wait_until(lambda: requests.post(url, data=b'{"readings": []}', headers=headers, timeout=2).ok,
                   timeout=60, message="the server")
        rng = random.Random(7)

        def round_of(round_no: int) -> list[dict]:
            # Each round gives every tray a new count (never equal to the last one).
            at = (T0 + timedelta(minutes=10 * round_no)).isoformat().replace("+00:00", "Z")
            return [
                {"tray_id": f"T-{i:05d}", "position": f"P-{i % 100:02d}", "read_at": at,
                 "weight_g": str(200 + 10 * (20 + (round_no * 7 + i) % 50) + rng.choice((-1, 0, 1)))}
                for i in range(args.trays)
            ]

        rounds = max(args.readings // args.trays, 1)
        bodies = []
        for r in range(rounds):
            readings = round_of(r)
            bodies += [json.dumps({"readings": readings[i:i + args.batch]}).encode()
                       for i in range(0, len(readings), args.batch)]
        naive_count = min(args.naive, args.trays)
        naive_bodies = [json.dumps({"readings": [reading]}).encode() for reading in round_of(rounds)[:naive_count]]

        sessions = {}

        def post(body: bytes) -> dict:
            import threading

            session = sessions.setdefault(threading.get_ident(), requests.Session())
            answer = session.post(url, data=body, headers=headers, timeout=120)
            answer.raise_for_status()
            return answer.json()

        cpu_used: dict[str, float] = {}

        def timed(all_bodies: list[bytes], label: str) -> tuple[float, list[dict], list[float]]:
            latencies: list[float] = []
            post(b'{"readings": []}')  # every server process has its connection before we count
            roots = [server.pid, *([worker.pid] if worker else [])]
            backends = database_backends()

            def one(body):
                started = time.perf_counter()
                result = post(body)
                latencies.append(time.perf_counter() - started)
                return result

            with CpuMeter({"server": lambda: process_tree(roots) | backends()}) as meter:
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.clients) as pool:
                    answers = list(pool.map(one, all_bodies))
                elapsed = time.perf_counter() - started
                if worker is not None:
                    time.sleep(1)  # let the worker finish dispatching this phase's changes
            cpu_used[label] = meter.seconds()["server"]
            return elapsed, answers, sorted(latencies)

        batched_s, batched_answers, batched_lat = timed(bodies, "batched")
        batched_n = sum(a["received"] for a in batched_answers)
        posted = sum(a["posted"] for a in batched_answers)
        naive_s, naive_answers, naive_lat = timed(naive_bodies, "naive")
        naive_n = sum(a["received"] for a in naive_answers)

        batched_rate, naive_rate = batched_n / batched_s, naive_n / naive_s
        p99 = lambda values: values[min(len(values) - 1, int(len(values) * 0.99))] * 1000  # noqa: E731
        print(f"batched: {batched_n} readings in {len(bodies)} requests of {args.batch}: {batched_s:.1f} s = "
              f"{batched_rate:,.0f} readings/s (p99 request {p99(batched_lat):.0f} ms); {posted} counts posted")
        print(f"naive:   {naive_n} readings, one per request: {naive_s:.1f} s = {naive_rate:,.0f} readings/s "
              f"(p99 request {p99(naive_lat):.0f} ms)")
        print(f"ratio batched / naive: {batched_rate / naive_rate:.1f}x  "
              f"(targets: >= 5,000 readings/s and >= 20x)")
        # CPU spent by the server side (gunicorn workers, RQ worker, PostgreSQL backends) does not
        # depend on how busy the machine is; 2 cores / CPU per reading bounds what an idle machine does.
        for label, count in (("batched", batched_n), ("naive", naive_n)):
            per = cpu_used[label] / count
            print(f"server CPU, {label}: {per * 1000:.3f} ms per reading -> at most "
                  f"{2 / per:,.0f} readings/s on 2 idle cores (client excluded)")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        _check_ledger(cabinet.pk)
    finally:
        server.stop()
        if worker is not None:
            worker.stop()


def _check_ledger(cabinet_id: int) -> None:
    from django.db.models import Sum

    from cabinets.models import Tray
    from posinv.models import StockLevel, StockMove

    trays = dict(Tray.objects.filter(cabinet_id=cabinet_id).values_list("article_id", "quantity"))
    levels = dict(StockLevel.objects.filter(article_id__in=trays).values_list("article_id", "on_hand"))
    sums = dict(
        StockMove.objects.filter(article_id__in=trays).values("article_id").annotate(s=Sum("quantity"))
        .values_list("article_id", "s")
    )
    wrong = [a for a, q in trays.items() if not (q == levels.get(a) == sums.get(a))]
    print(f"ledger check: {len(trays) - len(wrong)} of {len(trays)} articles have on_hand = tray quantity = "
          f"sum of moves{'' if not wrong else f'; WRONG: {wrong[:5]}'}")
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
