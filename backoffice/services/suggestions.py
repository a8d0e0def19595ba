"""Re-evaluate order suggestions after a reorder level changed, with the
core's own rule (posinv.services.suggestions), so there is one rule."""

from __future__ import annotations

from collections.abc import Iterable

from posinv.models import StockChange
from posinv.services.suggestions import suggestions_refresh_for_changes


def suggestions_reevaluate(*, pairs: Iterable[tuple[int, int]]) -> None:
    """Open, update or close the suggestion of each (article, location) as
    if its stock had just changed: the core consumer compares on_hand with
    the (new) reorder point. The change rows are not saved; the consumer
    only reads their pair and orders them by pk."""
    changes = [
        StockChange(pk=index, article_id=article_id, location_id=location_id)
        for index, (article_id, location_id) in enumerate(sorted(set(pairs)), start=1)
    ]
    if changes:
        suggestions_refresh_for_changes(changes=changes)
