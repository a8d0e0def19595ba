"""A real main system for the fault and load tests: gunicorn on its own
database, seeded through `manage.py shell` with live tills, a register
pushing entries, priced articles and opening stock; and a way to read its
state (sales, receipts, outbox, ledger drift) from its own database."""
from __future__ import annotations

import json
import re
from decimal import Decimal

import requests

from tests.support.processes import manage

SKUS = [f"LD-{n:02d}" for n in range(10)]
OPENING = Decimal("1000000")

SEED = """
from datetime import date
from decimal import Decimal
from django.contrib.auth import get_user_model
from pos.models import CashRegister
from posinv.models import Article, Location, Price, PriceGroup
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_issue
group = PriceGroup.objects.get_or_create(code="RETAIL", defaults={{"name": "Retail"}})[0]
shop = Location.objects.get_or_create(code="S1", defaults={{"name": "Shop"}})[0]
for sku in {skus!r}:
    article = Article.objects.get_or_create(sku=sku, defaults={{"name": "Article " + sku}})[0]
    Price.objects.get_or_create(article=article, group=group, defaults={{"amount": Decimal("2.50"),
                                "valid_from": date(2020, 1, 1)}})
stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key="seed:" + sku, quantity=Decimal({opening!r}),
                                 sku=sku, location_code="S1") for sku in {skus!r}],
                 origin=StockOrigin(kind="system", code="seed"))
tokens = {{}}
for code in {tills!r}:
    CashRegister.objects.get_or_create(code=code, defaults={{"location": shop, "price_group": group}})
    tokens[code] = token_issue(kind="register", subject=code)
from cabinets.models import Tray
from cabinets.services.provisioning import cabinet_create
cabinet, tokens["CAB1"] = cabinet_create(code="CAB1", location_code="CAB1-LOC")
screw = Article.objects.create(sku="SCREW", name="Screw", unit_weight_g=Decimal("10"))
Tray.objects.create(cabinet=cabinet, tray_id="T-1", article=screw)
user = get_user_model().objects.get_or_create(username="staff", defaults={{"is_staff": True}})[0]
tokens["staff"] = token_issue(kind="user", subject="staff", user=user)
print("TOKENS=" + __import__("json").dumps(tokens))
"""

STATE = """
import json
from cabinets.models import WeightReading
from pos.models import Receipt
from posinv.models import StockChange, StockLevel, StockMove
from posinv.selectors import ledger_drift
from retail.models import LiveSale
print("STATE=" + json.dumps({
    "live_sales": LiveSale.objects.count(),
    "receipt_nos": sorted(Receipt.objects.values_list("receipt_no", flat=True)),
    "sale_moves": StockMove.objects.exclude(idempotency_key__startswith="seed:")
                  .exclude(location__code="CAB1-LOC").count(),
    "changes_waiting": StockChange.objects.count(),
    "readings": sorted((str(r.read_at), r.outcome) for r in WeightReading.objects.all()),
    "cabinet_on_hand": [str(q) for q in StockLevel.objects.filter(location__code="CAB1-LOC")
                        .values_list("on_hand", flat=True)],
    "drift": [str(d) for d in ledger_drift()],
    "on_hand": {sku: str(q) for sku, q in StockLevel.objects.filter(location__code="S1")
                .values_list("article__sku", "on_hand")},
}))
"""


def seed(env: dict, *, tills: list[str]) -> dict[str, str]:
    script = SEED.format(skus=SKUS, opening=str(OPENING), tills=tills)
    out = manage("shell", "-c", script, env=env).stdout
    return json.loads(re.search(r"TOKENS=(.+)", out).group(1))


def state(env: dict) -> dict:
    out = manage("shell", "-c", STATE, env=env).stdout
    return json.loads(re.search(r"STATE=(.+)", out).group(1))


def sale_body(n: int, *, till: str) -> dict:
    """The n-th sale of a till: two lines, SKUs in turn, every 7th a return line."""
    lines = [
        {"sku": SKUS[n % len(SKUS)], "quantity": "1", "price": "2.50"},
        {"sku": SKUS[(n + 3) % len(SKUS)], "quantity": "-1" if n % 7 == 0 else "2", "price": "2.50"},
    ]
    total = sum(Decimal(line["quantity"]) * Decimal(line["price"]) for line in lines)
    return {"receipt_no": f"{till}-{n:06d}", "lines": lines, "payments": [{"method": "cash", "amount": str(total)}]}


def sell(url: str, token: str, *, till: str, n: int, session: requests.Session | None = None,
         timeout: float = 30) -> requests.Response:
    http = session or requests
    return http.post(f"{url}/api/v1/sales/", json=sale_body(n, till=till), timeout=timeout,
                     headers={"Authorization": f"Token {token}", "Idempotency-Key": f"{till}-{n}"})


def post_reading(url: str, token: str, *, n: int) -> requests.Response:
    """The n-th reading of tray T-1: 1000 g less 10 g per reading, one minute apart."""
    reading = {"tray_id": "T-1", "weight_g": str(1000 - 10 * n), "read_at": f"2026-03-02T10:{n:02d}:00+00:00"}
    return requests.post(f"{url}/api/v1/cabinets/CAB1/readings/", json={"readings": [reading]}, timeout=30,
                         headers={"Authorization": f"Token {token}"})


def expected_on_hand(sold: dict[str, list[int]]) -> dict[str, str]:
    """on_hand per SKU after the sales numbered `sold[till]` of each till."""
    stock = {sku: OPENING for sku in SKUS}
    for till, numbers in sold.items():
        for n in numbers:
            for line in sale_body(n, till=till)["lines"]:
                stock[line["sku"]] -= Decimal(line["quantity"])
    return {sku: f"{q:.3f}" for sku, q in stock.items()}


HEALTH = """
import json
from ops.selectors import sync_health_get
from posinv.models import JobRun
health = sync_health_get()


def failed_jobs():
    if health.queues.mode != "rq":
        return []
    import django_rq
    out = []
    for name in ("high", "default", "low"):
        queue = django_rq.get_queue(name)
        for job in queue.failed_job_registry.get_job_ids():
            fetched = queue.fetch_job(job)
            latest = fetched.latest_result() if fetched else None
            out.append([name, job, fetched and str(fetched.get_status()), fetched and fetched.worker_name,
                        fetched and str(fetched.enqueued_at), fetched and str(fetched.started_at),
                        fetched and str(fetched.ended_at), (latest.exc_string or "")[-600:] if latest else ""])
    return out


print("HEALTH=" + json.dumps({
    "status": health.status,
    "sections": health.sections,
    "queues": {"status": health.queues.status, "reason": health.queues.reason, "workers": health.queues.workers,
               "dead_workers": health.queues.dead_workers, "dead_runs": health.queues.dead_runs,
               "links": health.queues.links},
    "failed_jobs": failed_jobs(),
    "runs": [{"name": r.name, "subject": r.subject, "status": r.status, "error": r.error, "process": r.process}
             for r in JobRun.objects.order_by("pk")],
}))
"""


def health(env: dict) -> dict:
    """The main system's Sync health as its own code computes it (queues
    section and job runs), read in a child process on its database."""
    out = manage("shell", "-c", HEALTH, env=env).stdout
    return json.loads(re.search(r"HEALTH=(.+)", out).group(1))
