"""Demo data of the pos app (a `demo_loaders` extension): on the main
system, a push register R1 at S1 and a pull register R2 at S2 (inactive
until a node runs for it), and a few
days of sales arrived through synchronization, one line of which names an
article not imported yet (a failed entry to retry in the admin)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from pos.models import CashRegister, SyncEntry
from pos.services.apply import entries_receive
from pos.services.records import iso
from posinv.models import Article, Location


def pos_demo_load() -> None:
    """Idempotent: registers are matched by code; entries already received are duplicates."""
    if settings.POSINV_NODE != "main":
        return
    locations = {loc.code: loc for loc in Location.objects.filter(code__in=["S1", "S2"])}
    if len(locations) < 2:
        return
    r1, _ = CashRegister.objects.get_or_create(
        code="R1", defaults={"name": "Till 1, main street", "location": locations["S1"], "interval_seconds": 30}
    )
    CashRegister.objects.get_or_create(
        code="R2",
        # Inactive: no node listens at its URL in the demo; start one (docs/registers.md) and tick "active".
        defaults={"name": "Kiosk till", "location": locations["S2"], "sync_type": CashRegister.SyncType.PULL,
                  "node_url": "http://127.0.0.1:8001", "records_per_run": 200, "active": False},
    )
    if SyncEntry.objects.filter(register=r1).exists():
        return
    skus = list(Article.objects.order_by("sku").values_list("sku", flat=True)[:6])
    if not skus:
        return
    start = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=3)
    entries = []
    for number in range(1, 13):
        receipt_no = f"R1-{number:06d}"
        created = start + timedelta(hours=number * 5)
        sku_a, sku_b = skus[number % len(skus)], skus[(number * 7) % len(skus)]
        if number == 12:
            sku_b = "NEW-ARTICLE-1"  # not imported yet: its entry fails until it is
        lines = [(sku_a, Decimal(1 + number % 3), Decimal("1.20")), (sku_b, Decimal(1), Decimal("4.95"))]
        if number == 7:
            lines[1] = (sku_b, Decimal(-1), Decimal("4.95"))  # a return
        total = sum((qty * price for _, qty, price in lines), Decimal("0")).quantize(Decimal("0.01"))
        entries.append(("receipt", f"receipt:{receipt_no}", {
            "receipt_no": receipt_no, "process_no": f"P-{created:%Y%m%d}", "created_at": iso(created),
            "customer_no": None, "total": str(total), "currency": "EUR"}))
        for line_no, (sku, qty, price) in enumerate(lines, 1):
            entries.append(("receipt_line", f"receipt_line:{receipt_no}:{line_no}", {
                "receipt_no": receipt_no, "line_no": line_no, "sku": sku, "barcode": "",
                "quantity": f"{qty:.3f}", "unit_price": f"{price:.2f}", "discount": "0.00"}))
        entries.append(("payment_line", f"payment_line:{receipt_no}:1", {
            "receipt_no": receipt_no, "line_no": 1, "method": "card" if number % 2 else "cash",
            "amount": str(total)}))
    batch = [
        {"entry_no": number, "table": table, "record_id": record_id, "record": record}
        for number, (table, record_id, record) in enumerate(entries, 1)
    ]
    entries_receive(register_id=r1.pk, entries=batch)
