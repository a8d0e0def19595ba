"""Demo data for `make run` (a `demo_loaders` extension): a supplier for
the demo articles with packs and costs, 45 days of till sales at S1 with
a few loyalty customers, computed reorder levels, and the draft orders
they lead to, so the report pages, suggestions and purchasing have data."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from backoffice.models import Supplier, SupplierArticle
from backoffice.services.purchasing import purchase_orders_draft
from backoffice.services.reorder import reorder_levels_compute
from pos.models import CashRegister
from pos.services.receipts import CustomerSpec, LineSpec, receipt_record
from posinv.models import Article, Location, Price


def backoffice_demo_load() -> None:
    """Create the demo supplier, sales history and reorder levels once."""
    if Supplier.objects.filter(code="HW-SUPPLY").exists():
        return
    store = Location.objects.filter(code="S1").first()
    articles = list(Article.objects.filter(active=True).order_by("sku"))
    if store is None or not articles:
        return  # the core demo data is missing
    supplier = Supplier.objects.create(code="HW-SUPPLY", name="Hardware Supply Ltd.", lead_time_days=5)
    prices = {
        article_id: amount
        for article_id, amount in Price.objects.filter(group__code="RETAIL").values_list("article_id", "amount")
    }
    for index, article in enumerate(articles):
        price = prices.get(article.pk, Decimal("1.00"))
        SupplierArticle.objects.create(
            supplier=supplier,
            article=article,
            supplier_sku=f"HW-{article.sku}",
            pack_size=Decimal(50 if index % 2 else 100),
            min_order_qty=Decimal(100),
            cost=(price * Decimal("0.6")).quantize(Decimal("0.0001")),
        )
    register, _ = CashRegister.objects.get_or_create(code="BO-S1", defaults={"location": store, "name": "Demo till"})
    rng = random.Random(9)
    today = timezone.localdate()
    number = 0
    for days_ago in range(45, 0, -1):
        day = today - timedelta(days=days_ago)
        for _ in range(rng.randint(1, 4)):
            number += 1
            picked = rng.sample(articles, k=min(len(articles), rng.randint(1, 3)))
            at = timezone.make_aware(datetime.combine(day, time(8 + rng.randint(0, 10), rng.randint(0, 59))))
            receipt_record(
                register=register,
                receipt_no=f"BO-{number:05d}",
                created_at=at,
                lines=[
                    LineSpec(
                        line_no=line_no,
                        sku=article.sku,
                        quantity=Decimal(rng.randint(1, 12)),
                        unit_price=prices.get(article.pk, Decimal("1.00")),
                    )
                    for line_no, article in enumerate(picked, start=1)
                ],
                customer=CustomerSpec(customer_no=f"CUST-{rng.randint(1, 8):03d}") if rng.random() < 0.4 else None,
            )
    reorder_levels_compute(window_days=28, today=today, location_ids=[store.pk])
    purchase_orders_draft()
