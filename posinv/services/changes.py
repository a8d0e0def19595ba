"""The change outbox, read off the hot path.

The ledger writes a StockChange row per changed (article, location) in the
moves' transaction and, after commit, wakes the dispatcher. The dispatcher
claims rows with FOR UPDATE SKIP LOCKED (several workers may run it), hands
them to every consumer registered as a change consumer (posinv/plugins.py) and
deletes them, all in one transaction: a consumer's writes commit exactly
when the rows disappear, so each change is handled once, and a crash or a
Redis outage only delays it until the next sweep (docs/ledger.md)."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction

from posinv.models import StockChange
from posinv.plugins import extensions
from posinv.queueing import enqueue_wake

logger = logging.getLogger(__name__)

DISPATCH_JOB = "posinv.jobs.changes_dispatch_job"


_queued_at = {"monotonic": float("-inf")}


def changes_wake() -> None:
    """Ask for a dispatch soon; at most one is ever waiting, and it gathers the
    wake-ups of POSINV_CHANGES_GATHER_SECONDS into one run. Called after commit.

    A run this process queued less than the gathering time ago has not read
    its work yet (it starts after being queued, then waits that long), so it
    will see this commit: a busy till then skips the round trip to Redis."""
    gather = settings.POSINV_CHANGES_GATHER_SECONDS
    if time.monotonic() - _queued_at["monotonic"] < gather:
        return
    started = time.monotonic()
    job = enqueue_wake(
        DISPATCH_JOB,
        queue="high",
        unique_key="changes-dispatch",
        clear="start",
        ttl=60,
        gather_seconds=gather,
    )
    if job is not None and not settings.POSINV_JOBS_INLINE:
        _queued_at["monotonic"] = started


def changes_wake_forget() -> None:
    """Forget when this process last queued a run (tests that empty Redis)."""
    _queued_at["monotonic"] = float("-inf")


def changes_dispatch(*, batch_size: int = 2000, max_batches: int = 50) -> int:
    """Hand pending outbox rows to the consumers; returns how many were handled."""
    consumers = extensions("change_consumers")
    handled = 0
    for _ in range(max_batches):
        with transaction.atomic():
            rows = list(
                StockChange.objects.select_for_update(skip_locked=True).order_by("pk")[:batch_size]
            )
            if not rows:
                break
            for consumer in consumers:
                consumer(changes=rows)
            StockChange.objects.filter(pk__in=[row.pk for row in rows]).delete()
        handled += len(rows)
        if len(rows) < batch_size:
            break
    return handled


def latest_per_pair(changes: list[StockChange]) -> dict[tuple[int, int], StockChange]:
    """The newest change of each (article, location) pair in `changes`."""
    newest: dict[tuple[int, int], StockChange] = {}
    for change in changes:
        pair = (change.article_id, change.location_id)
        if pair not in newest or change.pk > newest[pair].pk:
            newest[pair] = change
    return newest
