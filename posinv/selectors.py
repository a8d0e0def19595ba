"""Reads of the core: article lookup, stock levels, and the ledger check.
Keyword-only functions named `<entity>_<query>`; no writes here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Round
from django.utils import timezone

from posinv.exceptions import InvalidInput, NotFound, Problem
from posinv.models import Article, Barcode, Price, StockLevel, StockMove
from posinv.services.barcodes import gtin_normalize


@dataclass(frozen=True)
class ArticleMatch:
    """An article found by SKU or barcode; `pack_qty` is the units one scan means."""

    article: Article
    matched_by: str
    barcode: Barcode | None
    pack_qty: Decimal


def article_find(*, code: str) -> ArticleMatch:
    """The article whose SKU is `code`, else whose barcode is `code` (any
    GTIN form: an UPC-A finds its EAN-13 twin). Raises InvalidInput for a
    code that is neither a known SKU nor a valid barcode, NotFound when no
    article carries it."""
    code = (code or "").strip()
    if not code:
        raise InvalidInput([Problem(field="code", reason="a SKU or barcode is required", code="required")])
    articles = Article.objects.prefetch_related(
        "barcodes", Prefetch("prices", queryset=Price.objects.select_related("group"))
    )
    article = articles.filter(sku=code).first()
    if article is not None:
        return ArticleMatch(article=article, matched_by="sku", barcode=None, pack_qty=Decimal("1"))
    if not code.isdigit():
        raise NotFound([Problem(field="code", reason=f"no article with SKU {code!r}", code="not_found")])
    gtin = gtin_normalize(code, field="code")
    barcode = Barcode.objects.filter(gtin=gtin).first()
    if barcode is None:
        raise NotFound([Problem(field="code", reason=f"no article with SKU or barcode {code!r}", code="not_found")])
    article = articles.get(pk=barcode.article_id)
    return ArticleMatch(article=article, matched_by="barcode", barcode=barcode, pack_qty=barcode.pack_qty)


def article_current_prices(*, article: Article, on=None) -> list[Price]:
    """The price that applies today in each group (newest valid_from not in
    the future), from the article's prefetched prices."""
    today = on or timezone.localdate()
    current: dict[int, Price] = {}
    for price in article.prices.all():
        if price.valid_from > today:
            continue
        held = current.get(price.group_id)
        if held is None or price.valid_from > held.valid_from:
            current[price.group_id] = price
    return sorted(current.values(), key=lambda p: p.group.code)


def stock_level_list(*, location: str | None = None, article: str | None = None) -> QuerySet[StockLevel]:
    """Stock levels filtered by location code and/or article SKU (or
    barcode), with article and location joined in the same query."""
    levels = StockLevel.objects.select_related("article", "location").order_by("location__code", "article__sku")
    if location:
        levels = levels.filter(location__code=location)
    if article:
        if article.isdigit() and not Article.objects.filter(sku=article).exists():
            levels = levels.filter(article__barcodes__gtin=gtin_normalize(article, field="article"))
        else:
            levels = levels.filter(article__sku=article)
    return levels


@dataclass(frozen=True)
class Drift:
    """A pair whose level disagrees with the sum of its moves."""

    article_id: int
    location_id: int
    sku: str
    location_code: str
    on_hand: Decimal
    moves_sum: Decimal

    @property
    def difference(self) -> Decimal:
        return self.on_hand - self.moves_sum


def ledger_drift() -> Iterator[Drift]:
    """Every (article, location) whose on_hand differs from the sum of its
    moves, and every pair that has moves but no level row. The database
    compares (one correlated sum per level, served by the (article,
    location, id) index) and returns only drifting pairs, so the check
    streams in bounded memory however large the ledger is."""
    pair_sum = (
        StockMove.objects.filter(article_id=OuterRef("article_id"), location_id=OuterRef("location_id"))
        .order_by()
        .values("article_id", "location_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    zero = Value(Decimal(0), output_field=StockLevel._meta.get_field("on_hand"))
    # Rounded to the ledger's 3 places: SQLite sums decimals as floats.
    drifting = (
        StockLevel.objects.annotate(moves_sum=Round(Coalesce(Subquery(pair_sum), zero), 3))
        .annotate(drift=Round(F("on_hand") - F("moves_sum"), 3))
        .exclude(drift=0)
        .order_by("pk")
        .values_list("article_id", "location_id", "article__sku", "location__code", "on_hand", "moves_sum")
    )
    for article_id, location_id, sku, code, on_hand, moves_sum in drifting.iterator(chunk_size=2000):
        yield Drift(article_id, location_id, sku, code, on_hand, _three_places(moves_sum))
    has_level = StockLevel.objects.filter(article_id=OuterRef("article_id"), location_id=OuterRef("location_id"))
    orphans = (
        StockMove.objects.order_by()
        .filter(~Exists(has_level))
        .values("article_id", "location_id", "article__sku", "location__code")
        .annotate(total=Round(Sum("quantity"), 3))
        .exclude(total=0)
        .order_by("article_id", "location_id")
    )
    for row in orphans.iterator(chunk_size=2000):
        yield Drift(
            row["article_id"],
            row["location_id"],
            row["article__sku"],
            row["location__code"],
            Decimal(0),
            _three_places(row["total"]),
        )


def _three_places(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.001"))
