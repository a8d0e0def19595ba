"""Reads for the multi-store view. Keyword-only functions, no writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, F, OuterRef

from posinv.models import Article, Location, StockLevel


@dataclass
class MatrixCell:
    on_hand: Decimal | None
    reorder_point: Decimal | None

    @property
    def below(self) -> bool:
        return self.reorder_point is not None and (self.on_hand or 0) < self.reorder_point


@dataclass
class MatrixRow:
    article: Article
    cells: list[MatrixCell]

    @property
    def total(self) -> Decimal:
        return sum((cell.on_hand or Decimal(0) for cell in self.cells), Decimal(0))


@dataclass
class StockMatrixPage:
    """One page of the articles-by-locations matrix."""

    locations: list[Location]
    rows: list[MatrixRow]
    total_articles: int
    page: int
    pages: int
    categories: list[str] = field(default_factory=list)


def stock_matrix(
    *,
    category: str = "",
    location_kind: str = "",
    below_reorder: bool = False,
    search: str = "",
    page: int = 1,
    per_page: int = 50,
) -> StockMatrixPage:
    """Articles (rows) by active locations (columns) with on hand and reorder
    point per cell. Filters: article category, location kind, and "below
    reorder point" (articles with at least one shown location under its
    reorder point). Five queries whatever the size: categories, locations,
    article count, the page of articles, and their levels."""
    categories = list(
        Article.objects.exclude(category="").order_by("category").values_list("category", flat=True).distinct()
    )
    locations_qs = Location.objects.filter(active=True).order_by("code")
    if location_kind:
        locations_qs = locations_qs.filter(kind=location_kind)
    locations = list(locations_qs)
    location_ids = [loc.pk for loc in locations]

    articles = Article.objects.filter(active=True).order_by("sku")
    if category:
        articles = articles.filter(category=category)
    if search:
        articles = articles.filter(sku__icontains=search) | articles.filter(name__icontains=search)
    if below_reorder:
        articles = articles.filter(
            Exists(
                StockLevel.objects.filter(
                    article=OuterRef("pk"),
                    location_id__in=location_ids,
                    reorder_point__isnull=False,
                    on_hand__lt=F("reorder_point"),
                )
            )
        )
    total = articles.count()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    page_articles = list(
        articles.only("pk", "sku", "name", "category", "unit")[(page - 1) * per_page : page * per_page]
    )
    levels = (
        {
            (level["article_id"], level["location_id"]): level
            for level in StockLevel.objects.filter(
                article_id__in=[a.pk for a in page_articles], location_id__in=location_ids
            ).values("article_id", "location_id", "on_hand", "reorder_point")
        }
        if page_articles and location_ids
        else {}
    )
    rows = []
    for article in page_articles:
        cells = []
        for location in locations:
            level = levels.get((article.pk, location.pk))
            cells.append(
                MatrixCell(
                    on_hand=level["on_hand"] if level else None,
                    reorder_point=level["reorder_point"] if level else None,
                )
            )
        rows.append(MatrixRow(article=article, cells=cells))
    return StockMatrixPage(
        locations=locations, rows=rows, total_articles=total, page=page, pages=pages, categories=categories
    )
