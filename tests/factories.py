"""Small factories for the suite: explicit keyword arguments, sensible defaults."""
from __future__ import annotations

import itertools
from decimal import Decimal

from posinv.models import Article, Barcode, Location
from posinv.services.barcodes import gtin_check_digit

_seq = itertools.count(1)


def make_location(*, code: str | None = None, name: str = "", kind: str = "store", refuse_negative: bool = False):
    code = code or f"L{next(_seq)}"
    return Location.objects.create(
        code=code,
        name=name or code,
        kind=kind,
        negative_stock=Location.NegativeStock.REFUSE if refuse_negative else Location.NegativeStock.ALLOW,
    )


def make_article(*, sku: str | None = None, name: str = "", unit_weight_g: Decimal | None = None, **extra):
    sku = sku or f"SKU-{next(_seq)}"
    return Article.objects.create(sku=sku, name=name or sku, unit_weight_g=unit_weight_g, **extra)


def valid_ean13(body12: str) -> str:
    """An EAN-13 with its correct check digit."""
    return body12 + str(gtin_check_digit(body12))


def make_barcode(*, article, code: str, pack_qty: Decimal = Decimal("1")):
    return Barcode.objects.create(article=article, code=code, gtin=code.zfill(14), pack_qty=pack_qty)
