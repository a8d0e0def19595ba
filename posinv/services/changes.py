"""The change outbox, read off the hot path.

The ledger writes a StockChange row per changed (article, location) in the
moves' transaction and, after commit, wakes the dispatcher. The dispatcher
claims rows with FOR UPDATE SKIP LOCKED (several workers may run it), hands
them to every consumer registered as a change consumer (posinv/plugins.py) and
deletes them, all in one transaction: a consumer's writes commit exactly
when the rows disappear, so each change is handled once, and a crash or a
Redis outage only delays it until the next sweep (docs/ledger.md).

One bad (article, location) pair never stops the others: a level beyond the
quantity bound (restored from an old database, say) is not handed on at
all, and a consumer that raises is retried on halves of the batch until the
pairs that fail alone are found. Those are recorded as `ChangeFailure` with
the reason (Sync health and the admin show them) and skipped; the rest are
handled. A failure of the database itself, or a consumer failing for every
pair of the batch (it is down, not a pair), keeps the whole batch for the
next sweep as before."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from posinv.bounds import level_problem
from posinv.models import ChangeFailure, StockChange, StockLevel
from posinv.plugins import extension_paths, extensions
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
    """Hand pending outbox rows to the consumers; returns how many were handled
    (including the changes of pairs recorded as failed and skipped)."""
    consumers = list(zip(extension_paths("change_consumers"), extensions("change_consumers"), strict=True))
    handled = 0
    for _ in range(max_batches):
        with transaction.atomic():
            rows = list(
                StockChange.objects.select_for_update(skip_locked=True).order_by("pk")[:batch_size]
            )
            if not rows:
                break
            by_pair = _by_pair(rows)
            beyond = {pair: level_problem(pair_rows[-1].on_hand) for pair, pair_rows in by_pair.items()}
            beyond = {pair: reason for pair, reason in beyond.items() if reason}
            deliverable = {pair: pair_rows for pair, pair_rows in by_pair.items() if pair not in beyond}
            recorded = _failures_of(by_pair)
            delivered_again = []
            for path, consumer in consumers:
                failed = dict.fromkeys(beyond, None)
                failed.update(_consume_isolating(path, consumer, deliverable))
                _failures_record(path, by_pair, failed, beyond, recorded)
                delivered_again += [pk for (consumer_path, pair), pk in recorded.items()
                                    if consumer_path == path and pair in deliverable and pair not in failed]
            if delivered_again:
                ChangeFailure.objects.filter(pk__in=delivered_again).delete()
            StockChange.objects.filter(pk__in=[row.pk for row in rows]).delete()
        handled += len(rows)
        if len(rows) < batch_size:
            break
    return handled


def _by_pair(rows: list[StockChange]) -> dict[tuple[int, int], list[StockChange]]:
    pairs: dict[tuple[int, int], list[StockChange]] = {}
    for row in rows:
        pairs.setdefault((row.article_id, row.location_id), []).append(row)
    return pairs


def _consume_isolating(path: str, consumer, by_pair: dict) -> dict[tuple[int, int], Exception]:
    """Run `consumer` on these pairs' rows; if it raises, on halves of them
    (each in a savepoint, so a failed half leaves no writes and no on_commit
    callbacks), down to the single pairs that fail alone. Returns those
    pairs with their errors. Re-raises a failure of the database connection,
    and a failure of every pair (the consumer itself is down, or nothing
    tells it from a bad pair): the caller's transaction then keeps the batch
    for the next sweep. So a pair is skipped only when it fails while others
    pass; alone in the outbox it waits, blocking nobody."""
    if not by_pair:
        return {}
    failed: dict[tuple[int, int], Exception] = {}
    first_error = _consume_halving(consumer, list(by_pair.items()), failed)
    if first_error is None:
        return {}
    if len(failed) == len(by_pair):
        raise first_error
    for pair, error in failed.items():
        logger.warning("change consumer %s failed for article %s at location %s, skipped: %s",
                       path, pair[0], pair[1], error)
    return failed


def _consume_halving(consumer, items: list, failed: dict) -> Exception | None:
    try:
        with transaction.atomic():
            consumer(changes=[row for _, pair_rows in items for row in pair_rows])
        return None
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:  # noqa: BLE001 - any consumer error is isolated to its pair
        if len(items) == 1:
            failed[items[0][0]] = error
            return error
        middle = len(items) // 2
        left = _consume_halving(consumer, items[:middle], failed)
        right = _consume_halving(consumer, items[middle:], failed)
        return left or right or error


def _failures_of(by_pair: dict) -> dict[tuple[str, tuple[int, int]], int]:
    """The recorded failures of these pairs, by (consumer, pair): one query
    per batch (an empty answer from an empty table in the usual case)."""
    articles = {a for a, _ in by_pair}
    rows = ChangeFailure.objects.filter(article_id__in=articles).values_list(
        "consumer", "article_id", "location_id", "pk"
    )
    return {(path, (a, loc)): pk for path, a, loc, pk in rows if (a, loc) in by_pair}


def _failures_record(path: str, by_pair: dict, failed: dict, beyond: dict, recorded: dict) -> None:
    """One ChangeFailure per (consumer, pair), counting repeats."""
    if not failed:
        return
    now = timezone.now()
    for pair, error in failed.items():
        reason = beyond.get(pair) or _error_text(error)
        on_hand = by_pair[pair][-1].on_hand
        same = ChangeFailure.objects.filter(consumer=path, article_id=pair[0], location_id=pair[1])
        if (path, pair) not in recorded:
            try:
                with transaction.atomic():
                    ChangeFailure.objects.create(consumer=path, article_id=pair[0], location_id=pair[1],
                                                 on_hand=on_hand, reason=reason, first_failed_at=now,
                                                 last_failed_at=now)
                continue
            except IntegrityError:
                pass  # another worker recorded this pair just now: count ours on it
        same.update(on_hand=on_hand, reason=reason, failures=F("failures") + 1, last_failed_at=now)


def _error_text(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:1000]


def change_failures_retry(*, failure_ids) -> int:
    """Hand the current level of these failed pairs to the consumers again
    (after its cause was fixed): one outbox row per pair, then a wake-up.
    The failure stays recorded until a consumer handles the pair."""
    pairs = set(ChangeFailure.objects.filter(pk__in=list(failure_ids)).values_list("article_id", "location_id"))
    if not pairs:
        return 0
    levels = {
        (a, loc): on_hand
        for a, loc, on_hand in StockLevel.objects.filter(
            article_id__in={a for a, _ in pairs}, location_id__in={loc for _, loc in pairs}
        ).values_list("article_id", "location_id", "on_hand")
        if (a, loc) in pairs
    }
    StockChange.objects.bulk_create(
        [StockChange(article_id=a, location_id=loc, on_hand=on_hand, origin="system", origin_code="retry")
         for (a, loc), on_hand in sorted(levels.items())]
    )
    transaction.on_commit(changes_wake, robust=True)
    return len(levels)


def latest_per_pair(changes: list[StockChange]) -> dict[tuple[int, int], StockChange]:
    """The newest change of each (article, location) pair in `changes`."""
    newest: dict[tuple[int, int], StockChange] = {}
    for change in changes:
        pair = (change.article_id, change.location_id)
        if pair not in newest or change.pk > newest[pair].pk:
            newest[pair] = change
    return newest
