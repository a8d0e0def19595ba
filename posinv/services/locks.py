"""Row locks, in one place. Locks are always taken in pk order (so two
batches over the same rows cannot deadlock) and always evaluated: an
unevaluated select_for_update queryset takes no lock.

On SQLite `select_for_update` is a no-op; there the IMMEDIATE transaction
mode set in config/settings.py takes the database write lock when the
transaction begins, which serializes writers."""
from __future__ import annotations

from collections.abc import Iterable

from posinv.models import StockLevel


def stock_levels_lock(*, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], StockLevel]:
    """Create missing levels for the (article_id, location_id) pairs, then lock
    all of them FOR UPDATE in pk order and return them by pair."""
    pairs = set(pairs)
    if not pairs:
        return {}
    articles = {a for a, _ in pairs}
    locations = {loc for _, loc in pairs}
    ids = {
        (a, loc): pk
        for pk, a, loc in StockLevel.objects.filter(article_id__in=articles, location_id__in=locations).values_list(
            "pk", "article_id", "location_id"
        )
        if (a, loc) in pairs
    }
    missing = pairs - ids.keys()
    if missing:
        StockLevel.objects.bulk_create(
            [StockLevel(article_id=a, location_id=loc) for a, loc in missing], ignore_conflicts=True
        )
        for pk, a, loc in StockLevel.objects.filter(
            article_id__in={a for a, _ in missing}, location_id__in={loc for _, loc in missing}
        ).values_list("pk", "article_id", "location_id"):
            if (a, loc) in missing:
                ids[(a, loc)] = pk
    locked = list(
        StockLevel.objects.select_for_update()
        .filter(pk__in=ids.values())
        .order_by("pk")
        .only("pk", "article_id", "location_id", "on_hand")
    )
    return {(level.article_id, level.location_id): level for level in locked}
