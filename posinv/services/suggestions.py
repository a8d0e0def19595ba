"""Order suggestions: at most one open per (article, location), opened when
stock falls below a trigger (a level's reorder point or a cabinet tray's
threshold), updated while it stays low, closed when stock recovers."""
from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from posinv.models import ReorderSuggestion, StockChange, StockLevel
from posinv.services.changes import latest_per_pair


def suggestion_open(
    *,
    article_id: int,
    location_id: int,
    source: str,
    quantity_on_hand: Decimal,
    trigger_level: Decimal,
    suggested_quantity: Decimal,
    source_ref: str = "",
) -> ReorderSuggestion:
    """Open the suggestion for this pair, or update the open one (never a second)."""
    values = {
        "source": source,
        "source_ref": source_ref,
        "quantity_on_hand": quantity_on_hand,
        "trigger_level": trigger_level,
        "suggested_quantity": max(suggested_quantity, Decimal(0)),
    }
    open_rows = ReorderSuggestion.objects.filter(
        article_id=article_id, location_id=location_id, state=ReorderSuggestion.State.OPEN
    )
    if open_rows.update(**values, updated_at=timezone.now()):
        return open_rows.get()
    try:
        with transaction.atomic():
            return ReorderSuggestion.objects.create(article_id=article_id, location_id=location_id, **values)
    except IntegrityError:
        # Opened concurrently by another worker: update that one instead.
        open_rows.update(**values, updated_at=timezone.now())
        return open_rows.get()


def suggestion_close(*, article_id: int, location_id: int, source: str | None = None) -> int:
    """Close the open suggestion of this pair (only if it came from `source`, when given)."""
    rows = ReorderSuggestion.objects.filter(
        article_id=article_id, location_id=location_id, state=ReorderSuggestion.State.OPEN
    )
    if source:
        rows = rows.filter(source=source)
    return rows.update(state=ReorderSuggestion.State.CLOSED, closed_at=timezone.now())


def suggestions_refresh_for_changes(*, changes: list[StockChange]) -> None:
    """Change-outbox consumer: compare each changed level with its reorder point."""
    newest = latest_per_pair(changes)
    if not newest:
        return
    levels = StockLevel.objects.filter(
        article_id__in={a for a, _ in newest},
        location_id__in={loc for _, loc in newest},
        reorder_point__isnull=False,
    ).values_list("article_id", "location_id", "on_hand", "reorder_point", "order_up_to")
    for article_id, location_id, on_hand, reorder_point, order_up_to in levels:
        if (article_id, location_id) not in newest:
            continue
        if on_hand < reorder_point:
            target = order_up_to if order_up_to is not None else reorder_point * 2
            suggestion_open(
                article_id=article_id,
                location_id=location_id,
                source=ReorderSuggestion.Source.REORDER_POINT,
                quantity_on_hand=on_hand,
                trigger_level=reorder_point,
                suggested_quantity=target - on_hand,
            )
        else:
            suggestion_close(
                article_id=article_id, location_id=location_id, source=ReorderSuggestion.Source.REORDER_POINT
            )
