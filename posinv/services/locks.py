"""Row locks, in one place. Locks are always taken in pk order (so two
batches over the same rows cannot deadlock) and always evaluated: an
unevaluated select_for_update queryset takes no lock.

On SQLite `select_for_update` is a no-op; there the IMMEDIATE transaction
mode set in config/settings.py takes the database write lock when the
transaction begins, which serializes writers."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from posinv.models import StockLevel


def stock_levels_lock(*, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], LockedLevel]:
    """Create missing levels for the (article_id, location_id) pairs, then lock
    all of them FOR UPDATE in pk order and return them by pair (each with
    pk, article_id, location_id and on_hand)."""
    pairs = set(pairs)
    if not pairs:
        return {}
    if connection.vendor == "postgresql":
        return _stock_levels_lock_pg(pairs)
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
        # Sorted, so two batches creating the same new pairs insert them in
        # the same order and cannot deadlock on each other's new rows.
        StockLevel.objects.bulk_create(
            [StockLevel(article_id=a, location_id=loc) for a, loc in sorted(missing)], ignore_conflicts=True
        )
        for pk, a, loc in StockLevel.objects.filter(
            article_id__in={a for a, _ in missing}, location_id__in={loc for _, loc in missing}
        ).values_list("pk", "article_id", "location_id"):
            if (a, loc) in missing:
                ids[(a, loc)] = pk
    locked = (
        StockLevel.objects.select_for_update()
        .filter(pk__in=ids.values())
        .order_by("pk")
        .values_list("pk", "article_id", "location_id", "on_hand")
    )
    return {(a, loc): LockedLevel(pk, a, loc, on_hand) for pk, a, loc, on_hand in locked}


class LockedLevel(NamedTuple):
    """A locked level as the ledger needs it (building model instances for
    hundreds of rows per batch costs more than the query)."""

    pk: int
    article_id: int
    location_id: int
    on_hand: Decimal


def _stock_levels_lock_pg(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], LockedLevel]:
    """PostgreSQL: the pairs travel as two arrays (a few parameters instead of
    two per pair). Lock the existing levels in pk order, create the missing
    ones (sorted, ON CONFLICT DO NOTHING: a concurrent creator wins and we
    wait for it), then lock those in pk order too. New rows are only ever
    created after the existing ones are locked, in sorted order, so two
    batches cannot wait on each other in a cycle."""
    table = StockLevel._meta.db_table
    select = (
        f'SELECT id, article_id, location_id, on_hand FROM "{table}" '
        "WHERE (article_id, location_id) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[])) "
        "ORDER BY id FOR UPDATE"
    )

    def lock(wanted: list[tuple[int, int]]) -> dict[tuple[int, int], StockLevel]:
        with connection.cursor() as cursor:
            cursor.execute(select, [[a for a, _ in wanted], [loc for _, loc in wanted]])
            return {(a, loc): LockedLevel(pk, a, loc, on_hand) for pk, a, loc, on_hand in cursor.fetchall()}

    levels = lock(list(pairs))
    missing = sorted(pairs - levels.keys())
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{table}" (article_id, location_id, on_hand, updated_at) '
                "SELECT a, l, 0, %s FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS t(a, l, n) "
                "ORDER BY t.n ON CONFLICT (article_id, location_id) DO NOTHING",
                [timezone.now(), [a for a, _ in missing], [loc for _, loc in missing]],
            )
        levels.update(lock(missing))
    return levels
