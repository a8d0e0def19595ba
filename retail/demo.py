"""Demo data of the retail app (a `demo_loaders` extension): scale-label
layouts for prefixes 21 (weight) and 22 (price with verifier digit), a
loose-sold article with its scale barcode, the RETAIL price group on the
demo tills, and a draft transfer order from the warehouse to the store."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from pos.models import CashRegister
from posinv.models import Article, Barcode, Location, Price, PriceGroup
from posinv.services.barcodes import gtin_check_digit
from retail.models import ScaleLayout, TransferOrder
from retail.services.transfers import TransferLineSpec, transfer_create


def retail_demo_load() -> None:
    """Idempotent: everything is matched by its natural key before it is created."""
    if settings.POSINV_NODE != "main":
        return
    ScaleLayout.objects.get_or_create(prefix="21", defaults={"content": "weight", "item_digits": 5})
    ScaleLayout.objects.get_or_create(
        prefix="22", defaults={"content": "price", "item_digits": 4, "has_verifier": True}
    )
    retail = PriceGroup.objects.filter(code="RETAIL").first()
    if retail is None:
        return
    nails, _ = Article.objects.get_or_create(
        sku="NAIL-LOOSE", defaults={"name": "Nails, loose by weight", "unit": "kg", "category": "nails"}
    )
    body = "210000100000"  # prefix 21, item 00001, weight zeroed
    code = body + str(gtin_check_digit(body))
    Barcode.objects.get_or_create(gtin=code.zfill(14), defaults={"article": nails, "code": code})
    Price.objects.get_or_create(
        article=nails, group=retail, valid_from=timezone.localdate(), defaults={"amount": Decimal("6.90")}
    )
    CashRegister.objects.filter(price_group__isnull=True).update(price_group=retail)
    codes = set(Location.objects.filter(code__in=["W1", "S1"]).values_list("code", flat=True))
    if codes == {"W1", "S1"} and not TransferOrder.objects.exists():
        skus = list(Article.objects.exclude(sku="NAIL-LOOSE").order_by("sku").values_list("sku", flat=True)[:3])
        if skus:
            transfer_create(
                source_code="W1",
                destination_code="S1",
                lines=[TransferLineSpec(sku=sku, quantity=Decimal(24)) for sku in skus],
                note="weekly restock (demo)",
                created_by="demo_data",
            )
