"""Factories for the retail tests: a store with a register (and its token),
a price group, and articles with real barcodes and prices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from posinv.models import Price, PriceGroup, StockMove
from posinv.services.barcodes import gtin_check_digit
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_issue
from tests.factories import make_article, make_barcode
from tests.pos.factories import make_register


def with_check(body: str) -> str:
    """`body` followed by its GS1 mod-10 check digit."""
    return body + str(gtin_check_digit(body))


def make_priced_article(
    *,
    sku: str,
    price: str,
    group,
    barcode: str | None = None,
    pack: tuple[str, str] | None = None,
    unit: str = "pcs",
    category: str = "",
):
    """An article with today's price in `group`, its barcode and optionally a pack barcode (code, units)."""
    article = make_article(sku=sku, unit=unit, category=category)
    Price.objects.create(article=article, group=group, amount=Decimal(price), valid_from=timezone.localdate())
    if barcode:
        make_barcode(article=article, code=barcode)
    if pack:
        make_barcode(article=article, code=pack[0], pack_qty=Decimal(pack[1]))
    return article


def make_till(*, location, code: str = "R1", group=None):
    """A register at `location` with a price group, and its raw device token."""
    group = group or PriceGroup.objects.get_or_create(code="RETAIL", defaults={"name": "Retail"})[0]
    register = make_register(code=code, location=location, price_group=group)
    return register, token_issue(kind="register", subject=code)


def stock_in(*, article, location, quantity: str, key: str | None = None) -> None:
    """Goods received through the ledger (the only way stock changes)."""
    stock_moves_post(
        moves=[
            MoveSpec(
                kind=StockMove.Kind.RECEIPT,
                idempotency_key=key or f"test-in:{article.pk}:{location.pk}:{quantity}:{timezone.now().timestamp()}",
                quantity=Decimal(quantity),
                article_id=article.pk,
                location_id=location.pk,
            )
        ],
        origin=StockOrigin(kind="user", code="test"),
    )


def yesterday():
    return timezone.localdate() - timedelta(days=1)
