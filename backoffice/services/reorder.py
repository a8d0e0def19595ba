"""Reorder points and order-up-to levels: set by hand, or computed from
average daily sales, the supplier's lead time and a safety factor.

    reorder point = ceil(avg daily sales x lead time x (1 + safety factor))
    order-up-to   = reorder point + ceil(avg daily sales x review days)

Levels set by hand are kept by the computation unless asked otherwise."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from backoffice.models import ReorderPlan, Supplier, SupplierArticle
from backoffice.services.suggestions import suggestions_reevaluate
from pos.models import ReceiptLine
from posinv.exceptions import InvalidInput, Problem
from posinv.models import Article, Location, StockLevel

DEFAULT_LEAD_TIME_DAYS = 7


def _quantity(value, field_name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidInput([Problem(field=field_name, reason=f"{value!r} is not a number")]) from exc
    if not number.is_finite() or number < 0:
        raise InvalidInput([Problem(field=field_name, reason="must be a number of at least 0")])
    if number != number.quantize(Decimal("0.001")):
        raise InvalidInput([Problem(field=field_name, reason="at most 3 decimal places")])
    return number


def reorder_level_set(
    *,
    article_id: int,
    location_id: int,
    reorder_point,
    order_up_to,
    set_by: str = "",
) -> StockLevel:
    """Set the pair's reorder point and order-up-to level by hand (None
    clears them), remember that it was by hand, and open or close its
    suggestion at once. The order-up-to level may not be below the point."""
    point = _quantity(reorder_point, "reorder_point")
    up_to = _quantity(order_up_to, "order_up_to")
    if up_to is not None and point is None:
        raise InvalidInput([Problem(field="reorder_point", reason="an order-up-to level needs a reorder point")])
    if point is not None and up_to is not None and up_to < point:
        raise InvalidInput([Problem(field="order_up_to", reason=f"must be at least the reorder point ({point})")])
    if not Article.objects.filter(pk=article_id).exists():
        raise InvalidInput([Problem(field="article", reason=f"unknown article id {article_id}")])
    if not Location.objects.filter(pk=location_id).exists():
        raise InvalidInput([Problem(field="location", reason=f"unknown location id {location_id}")])
    with transaction.atomic():
        # A new level starts at 0 on hand, which is the sum of its (no) moves.
        level, _ = StockLevel.objects.get_or_create(article_id=article_id, location_id=location_id)
        StockLevel.objects.filter(pk=level.pk).update(reorder_point=point, order_up_to=up_to)
        ReorderPlan.objects.update_or_create(
            article_id=article_id,
            location_id=location_id,
            defaults={
                "source": ReorderPlan.Source.MANUAL,
                "avg_daily_sales": None,
                "lead_time_days": None,
                "safety_factor": None,
                "set_by": set_by[:150],
            },
        )
        suggestions_reevaluate(pairs=[(article_id, location_id)])
    level.refresh_from_db()
    return level


@dataclass
class ComputeResult:
    """What the computation did: levels written, pairs kept because set by
    hand, and pairs without sales in the window (left unchanged)."""

    updated: int = 0
    kept_manual: int = 0
    pairs: list[tuple[int, int]] = field(default_factory=list)


def _lead_times() -> dict[int, int]:
    """Lead time per article from its preferred supplier article (or the supplier's)."""
    supplier_days = dict(Supplier.objects.values_list("pk", "lead_time_days"))
    return {
        article_id: own if own is not None else supplier_days[supplier_id]
        for article_id, supplier_id, own in SupplierArticle.objects.filter(preferred=True).values_list(
            "article_id", "supplier_id", "lead_time_days"
        )
    }


def _ceil(value: Decimal) -> Decimal:
    return Decimal(math.ceil(value))


def reorder_levels_compute(
    *,
    window_days: int = 28,
    safety_factor: Decimal = Decimal("0.5"),
    review_days: int = 7,
    today: date | None = None,
    location_ids: list[int] | None = None,
    include_manual: bool = False,
    default_lead_time_days: int = DEFAULT_LEAD_TIME_DAYS,
    progress: Callable[[int, int], None] | None = None,
) -> ComputeResult:
    """Recompute reorder points and order-up-to levels of every (article,
    location) that sold in the last `window_days` (net of returns, summed
    in the database), then re-evaluate their suggestions."""
    problems = []
    if window_days < 1:
        problems.append(Problem(field="window_days", reason="must be at least 1"))
    if review_days < 0:
        problems.append(Problem(field="review_days", reason="must be at least 0"))
    if safety_factor < 0:
        problems.append(Problem(field="safety_factor", reason="must be at least 0"))
    if problems:
        raise InvalidInput(problems)
    today = today or timezone.localdate()
    tz = timezone.get_current_timezone()
    end = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min), tz)
    start = end - timedelta(days=window_days)
    sales = ReceiptLine.objects.filter(
        receipt__created_at__gte=start, receipt__created_at__lt=end, article__isnull=False
    )
    if location_ids:
        sales = sales.filter(receipt__register__location_id__in=location_ids)
    sold = list(
        sales.values_list("article_id", "receipt__register__location_id").annotate(quantity=Sum("quantity")).order_by()
    )
    manual = set(ReorderPlan.objects.filter(source=ReorderPlan.Source.MANUAL).values_list("article_id", "location_id"))
    lead_times = _lead_times()
    result = ComputeResult()
    plans = []
    targets: dict[tuple[int, int], tuple[Decimal, Decimal]] = {}
    for done, (article_id, location_id, quantity) in enumerate(sold, start=1):
        pair = (article_id, location_id)
        if pair in manual and not include_manual:
            result.kept_manual += 1
            continue
        average = max(Decimal(quantity), Decimal(0)) / window_days
        lead = lead_times.get(article_id, default_lead_time_days)
        point = _ceil(average * lead * (1 + safety_factor))
        targets[pair] = (point, point + _ceil(average * review_days))
        plans.append(
            ReorderPlan(
                article_id=article_id,
                location_id=location_id,
                source=ReorderPlan.Source.COMPUTED,
                avg_daily_sales=average.quantize(Decimal("0.001")),
                lead_time_days=lead,
                safety_factor=safety_factor,
                set_by="reorder_compute",
            )
        )
        if progress and done % 1000 == 0:
            progress(done, len(sold))
    with transaction.atomic():
        for pair in targets:
            # Missing levels start at 0, the sum of their (no) moves.
            StockLevel.objects.get_or_create(article_id=pair[0], location_id=pair[1])
        levels = list(
            StockLevel.objects.filter(
                article_id__in={a for a, _ in targets}, location_id__in={loc for _, loc in targets}
            ).only("pk", "article_id", "location_id")
        )
        changed = []
        for level in levels:
            target = targets.get((level.article_id, level.location_id))
            if target:
                level.reorder_point, level.order_up_to = target
                changed.append(level)
        StockLevel.objects.bulk_update(changed, ["reorder_point", "order_up_to"], batch_size=1000)
        ReorderPlan.objects.bulk_create(
            plans,
            update_conflicts=True,
            unique_fields=["article", "location"],
            update_fields=["source", "avg_daily_sales", "lead_time_days", "safety_factor", "set_by", "updated_at"],
            batch_size=1000,
        )
        suggestions_reevaluate(pairs=targets.keys())
    if progress:
        progress(len(sold), len(sold))
    result.updated = len(targets)
    result.pairs = sorted(targets)
    return result
