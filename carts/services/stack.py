"""The web stack and its stack controller (docs/carts.md).

`stack_changes_consume` is the ledger outbox's consumer: each changed
(article, location) becomes a StackEntry for every other synchronized cart
selling that location and linked to the article, and a sweep of that store is
woken after commit (at most one waiting per store).

`stack_sweep` is the controller, run by any number of workers side by side.
It claims *products* (ProductLink rows with waiting entries) with SELECT ...
FOR UPDATE SKIP LOCKED and a short claim lease, so one product is sent by one
worker at a time and an older figure can never overtake a newer one. It then
computes the product's available-to-sell afresh (so entries coalesce to the
newest figure), sends one batch per platform limits, and settles exactly the
entries it claimed; an entry queued meanwhile stays waiting and is sent next.
Throttling waits and never costs an attempt; errors back off with jitter and
fail an entry after `max_attempts`, keeping the last response; a timeout is an
unknown outcome: the product is read back before anything is sent again."""
from __future__ import annotations

import logging
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial, update_wrapper

from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from carts.connectors.base import (
    ConnectorError,
    PushOutcome,
    QuantityUpdate,
    Throttled,
    UnknownOutcome,
    Unsupported,
    connector_class,
)
from carts.models import CartSettings, ExternalStore, ProductLink, StackEntry
from carts.services.stores import (
    cart_settings_get,
    store_available,
    store_connector,
    store_receives_stock,
    stores_receiving_stock,
)
from posinv.bounds import quantity_within
from posinv.models import StockChange
from posinv.queueing import enqueue_wake

logger = logging.getLogger(__name__)

SWEEP_JOB = "carts.jobs.stack_sweep_job"
OPEN_STATES = (StackEntry.State.WAITING, StackEntry.State.SENDING)
STALE_ROUNDS = 2
# A Send QOH of a large catalogue adds this many entries or more at once:
# PostgreSQL's statistics are refreshed at once, or the claim query planned
# on the old ones (a nested loop over "one" entry) took ~4 s a batch at
# 50,000 products instead of under a millisecond (bench/limits_shopify.py).
BULK_ANALYZE_ROWS = 2000


def stack_wake(store_id: int) -> None:
    """Ask for a sweep of this store soon (deduplicated: one waiting per store)."""
    enqueue_wake(SWEEP_JOB, queue="high", unique_key=f"stack-sweep:{store_id}", clear="start", ttl=60,
                 store_id=store_id)


def stack_wake_after_commit(store_id: int) -> None:
    """Wake the store's sweep once the current transaction commits; a failing
    wake-up (Redis down) is logged, never raised: the periodic sweep catches up."""
    # update_wrapper gives the partial the __qualname__ that Django's robust
    # on_commit needs to log a failure; a bare partial turns it into an error.
    transaction.on_commit(update_wrapper(partial(stack_wake, store_id), stack_wake), robust=True)


def _synchronized_stores():
    """Stores told about each change: an inferior store (stock "send to the
    store") always, since choosing that direction is the decision; a cart
    with "synchronize inventory" while the master switch (Cart settings →
    synchronize QOH, Stone Edge's SynchQOH) is on."""
    receiving = Q(stock_direction=ExternalStore.Direction.SEND)
    if cart_settings_get().synch_qoh:
        receiving = stores_receiving_stock()
    return ExternalStore.objects.filter(receiving, active=True).prefetch_related("locations")


def _own_changes_skippable(store: ExternalStore) -> bool:
    """Whether a store's own orders (and Get QOH) need not be sent back to it.

    Only where sends are compare-and-set (Shopify). Elsewhere an absolute
    figure we sent before importing one of its orders has overwritten the
    cart's own reduction (WooCommerce took 3 for an order; our figure, sent
    a moment later, did not yet know it): the sale we then import must go
    back, or the cart stays 3 above the ledger for good. Sending the figure
    the cart already holds is harmless, so the echo costs one call at most."""
    try:
        return connector_class(store.platform).compare_and_set
    except KeyError:
        return False


def stack_changes_consume(*, changes: list[StockChange]) -> int:
    """Change-outbox consumer: queue each change for every other synchronized
    cart selling its location. Returns the number of entries written."""
    if not changes:
        return 0
    # Direct channels publish an external warehouse's figures, not the ledger's.
    stores = [s for s in _synchronized_stores() if not s.direct_source_id]
    written = 0
    for store in stores:
        location_ids = {loc.pk for loc in store.locations.all()}
        skip_own = _own_changes_skippable(store)
        relevant = [
            c for c in changes
            if c.location_id in location_ids
            and not (skip_own and c.origin == "store" and c.origin_code == store.code)
        ]
        if not relevant:
            continue
        newest = {}
        for change in relevant:
            if change.article_id not in newest or change.pk > newest[change.article_id].pk:
                newest[change.article_id] = change
        written += stack_entries_add(store=store, article_ids=newest.keys(),
                                     origins={a: (c.origin, c.origin_code) for a, c in newest.items()})
    return written


def stack_entries_add(*, store: ExternalStore, article_ids, origins: dict | None = None,
                      origin: tuple[str, str] = ("system", "")) -> int:
    """Queue the current available-to-sell of these articles for `store`
    (linked articles only) and wake its sweep after commit."""
    linked = set(
        ProductLink.objects.filter(store=store, article_id__in=list(article_ids)).values_list("article_id", flat=True)
    )
    if not linked:
        return 0
    quantities = store_available(store=store, article_ids=linked)
    now = timezone.now()
    origins = origins or {}
    # A product backing off (the cart failed or throttled it) keeps its wait:
    # were the new entry due now, every sale would retry a cart that is down
    # and spend the older entries' attempts within seconds instead of minutes.
    backing_off = dict(
        StackEntry.objects.filter(store=store, article_id__in=linked, state=StackEntry.State.WAITING,
                                  next_attempt_at__gt=now)
        .order_by().values("article_id").annotate(until=Max("next_attempt_at")).values_list("article_id", "until")
    )
    StackEntry.objects.bulk_create([
        StackEntry(store=store, article_id=article_id, quantity=quantities[article_id],
                   origin=origins.get(article_id, origin)[0], origin_code=origins.get(article_id, origin)[1][:120],
                   next_attempt_at=backing_off.get(article_id, now))
        for article_id in sorted(linked)
    ], batch_size=5000)
    if len(linked) >= BULK_ANALYZE_ROWS:
        tables_analyze(StackEntry)
    stack_wake_after_commit(store.pk)
    return len(linked)


def tables_analyze(*models) -> None:
    """Refresh the planner's statistics of these tables (PostgreSQL; a no-op elsewhere)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')


def stack_stores_add(*, article_ids, location_id: int, exclude_store_id: int | None, origin: tuple[str, str]) -> int:
    """Queue these articles for every synchronized store selling `location_id`
    (used when reservations change, which the ledger does not see)."""
    written = 0
    for store in _synchronized_stores():
        if store.pk == exclude_store_id or location_id not in {loc.pk for loc in store.locations.all()}:
            continue
        written += stack_entries_add(store=store, article_ids=article_ids, origin=origin)
    return written


@dataclass
class SweepResult:
    claimed: int = 0
    sent: int = 0
    settled_entries: int = 0
    throttled: int = 0
    errors: int = 0
    failed: int = 0
    stale: int = 0
    readbacks: int = 0
    http_calls: int = 0
    batches: int = 0
    notes: list[str] = field(default_factory=list)
    retry_at: object = None  # when throttled: when the entries put back are due again

    def as_counts(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("notes", "retry_at") and v}


@dataclass
class _Claim:
    token: str
    links: list[ProductLink]
    entry_ids: dict[int, list[int]]  # article_id -> entry ids
    renewed_at: float = field(default_factory=time.monotonic)


def stack_claim(*, store: ExternalStore, limit: int, claim_seconds: float) -> _Claim | None:
    """Claim up to `limit` products of `store` that have due entries: their
    link rows are locked with SKIP LOCKED (two workers never take the same
    ones) and leased, and their open entries are marked sending."""
    now = timezone.now()
    # The pid tells the admin (and the crash test) which worker holds a claim.
    token = f"{os.getpid()}:{uuid.uuid4().hex}"[:40]
    due = StackEntry.objects.filter(
        store_id=store.pk, article_id=OuterRef("article_id"), state__in=OPEN_STATES, next_attempt_at__lte=now
    )
    with transaction.atomic():
        links = list(
            ProductLink.objects.select_for_update(skip_locked=True)
            .filter(store=store)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .filter(Exists(due))
            .order_by("pk")[:limit]
        )
        if not links:
            return None
        ProductLink.objects.filter(pk__in=[link.pk for link in links]).update(
            claimed_until=now + timedelta(seconds=claim_seconds), claim_token=token
        )
        entry_ids: dict[int, list[int]] = {}
        rows = StackEntry.objects.filter(
            store_id=store.pk, article_id__in=[link.article_id for link in links], state__in=OPEN_STATES
        ).values_list("pk", "article_id")
        for pk, article_id in rows:
            entry_ids.setdefault(article_id, []).append(pk)
        StackEntry.objects.filter(pk__in=[pk for ids in entry_ids.values() for pk in ids]).update(
            state=StackEntry.State.SENDING, updated_at=now
        )
    return _Claim(token=token, links=links, entry_ids=entry_ids)


def _release(claim: _Claim, links: list[ProductLink]) -> None:
    ProductLink.objects.filter(pk__in=[link.pk for link in links], claim_token=claim.token).update(
        claimed_until=None, claim_token=""
    )


def _backoff(attempts: int, params: CartSettings) -> float:
    delay = min(params.backoff_cap_seconds, params.backoff_base_seconds * (2 ** max(attempts - 1, 0)))
    return delay * random.uniform(0.5, 1.5)


def _settle_sent(claim: _Claim, sent: list[tuple[ProductLink, int, str]]) -> int:
    """Mark the claimed entries of these products sent (with the figure that
    went out) and release the products: two UPDATEs for the whole batch.

    Each product gets its own figure from a VALUES list joined in the
    UPDATE (PostgreSQL and SQLite 3.33+ both take UPDATE ... FROM). A CASE
    of 1,000 WHENs built by the ORM cost seconds per batch in Python alone,
    which made a 150,000-product Send QOH take longer than the platform's
    rate limit does (bench/limits_baselinker.py)."""
    if not sent:
        return 0
    now = timezone.now()
    ids = [pk for link, _, _ in sent for pk in claim.entry_ids.get(link.article_id, [])]
    if not ids:
        return 0
    entries, links = StackEntry._meta.db_table, ProductLink._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    entry_rows = ", ".join(["(%s, %s, %s)"] * len(sent))
    link_rows = ", ".join(["(%s, %s)"] * len(sent))
    with transaction.atomic(), connection.cursor() as cursor:
        # VALUES columns are column1, column2... in both databases.
        cursor.execute(
            f"UPDATE {entries} SET state = %s, sent_quantity = v.column2, sent_at = %s, updated_at = %s, "
            f"last_response = v.column3 FROM (VALUES {entry_rows}) AS v "
            f"WHERE {entries}.id IN ({', '.join(['%s'] * len(ids))}) AND {entries}.state = %s "
            f"AND {entries}.article_id = v.column1",
            [StackEntry.State.SENT, stamp, stamp,
             *[value for link, q, text in sent for value in (link.article_id, int(q), text[:2000])],
             *ids, StackEntry.State.SENDING])
        settled = cursor.rowcount
        cursor.execute(
            f"UPDATE {links} SET remote_quantity = v.column2, last_sent_quantity = v.column2, last_sent_at = %s, "
            f"outcome_unknown = %s, claimed_until = NULL, claim_token = '' FROM (VALUES {link_rows}) AS v "
            f"WHERE {links}.id = v.column1",
            [stamp, False, *[value for link, q, _ in sent for value in (link.pk, int(q))]])
    return settled



def _settle_retry(claim: _Claim, links: list[ProductLink], *, response: str, delay: float, count_attempt: bool,
                  params: CartSettings, unknown: bool = False) -> int:
    """Put these products' entries back as waiting (after `delay`), counting
    an attempt unless it was throttling; entries past max attempts fail.
    Returns how many failed."""
    if not links:
        return 0
    now = timezone.now()
    ids = [pk for link in links for pk in claim.entry_ids.get(link.article_id, [])]
    failed = 0
    retry_at = None
    with transaction.atomic():
        entries = StackEntry.objects.filter(pk__in=ids, state=StackEntry.State.SENDING)
        if count_attempt:
            rows = list(entries.values_list("pk", "attempts"))
            give_up = [pk for pk, attempts in rows if attempts + 1 >= params.max_attempts]
            failed = StackEntry.objects.filter(pk__in=give_up).update(
                state=StackEntry.State.FAILED, attempts=params.max_attempts, last_response=response[:2000],
                updated_at=now)
            survivors = [(pk, attempts) for pk, attempts in rows if attempts + 1 < params.max_attempts]
            rest = [pk for pk, _ in survivors]
            if survivors:
                # The survivors' own count: an entry given up just now must not
                # stretch their wait past the longest backoff they can reach.
                attempts = max(attempts for _, attempts in survivors) + 1
                retry_at = now + timedelta(seconds=_backoff(attempts, params))
            StackEntry.objects.filter(pk__in=rest).update(
                state=StackEntry.State.WAITING, attempts=F("attempts") + 1, last_response=response[:2000],
                next_attempt_at=retry_at, updated_at=now)
        else:
            retry_at = now + timedelta(seconds=delay)
            entries.update(state=StackEntry.State.WAITING, last_response=response[:2000],
                           next_attempt_at=retry_at, updated_at=now)
        if retry_at is not None:
            # Entries queued while this batch was in flight wait with it, or
            # the next sweep would retry the failing cart at once.
            StackEntry.objects.filter(
                store_id=links[0].store_id, article_id__in=[link.article_id for link in links],
                state=StackEntry.State.WAITING, next_attempt_at__lt=retry_at,
            ).exclude(pk__in=ids).update(next_attempt_at=retry_at)
        updates = {"claimed_until": None, "claim_token": ""}
        if unknown:
            updates["outcome_unknown"] = True
        ProductLink.objects.filter(pk__in=[link.pk for link in links], claim_token=claim.token).update(**updates)
    return failed


def stack_sweep(*, store_id: int, time_budget: float = 20.0) -> SweepResult:
    """Send what is due for one store, batch after batch, until nothing is
    due or `time_budget` seconds have passed."""
    result = SweepResult()
    store = ExternalStore.objects.filter(pk=store_id, active=True).prefetch_related("locations").first()
    if store is None or not store_receives_stock(store):
        return result
    params = cart_settings_get()
    connector = store_connector(store=store)
    # The sweep never waits for a platform's bucket inside a call: a
    # throttled call raises, and the sweep hands its entries back (below).
    connector.wait_for_bucket = False
    in_worker = in_rq_worker()
    deadline = time.monotonic() + time_budget
    while time.monotonic() < deadline:
        claim = stack_claim(store=store, limit=connector.batch_size, claim_seconds=params.claim_seconds)
        if claim is None:
            if in_worker or not _wait_for_soon_due(store, deadline):
                break
            continue
        result.claimed += len(claim.links)
        result.batches += 1
        throttled = result.throttled
        try:
            _send_claim(store, connector, claim, params, result)
        except BaseException:
            # Anything unexpected: hand the products back (not counted as an
            # attempt) so another sweep can take them at once.
            _settle_retry(claim, claim.links, response="controller error", delay=1, count_attempt=False,
                          params=params)
            raise
        if in_worker and result.throttled > throttled:
            # Give the worker back rather than wait for the bucket: every due
            # entry of this store waits until it has refilled, and the
            # scheduler's periodic sweep offers the store again then
            # (carts_due). Other stores' sweeps and the outbox dispatcher get
            # the worker meanwhile.
            _store_waits(store, result.retry_at)
            result.notes.append("throttled: the worker was given back until the bucket refills")
            break
    result.http_calls = connector.calls
    return result


def in_rq_worker() -> bool:
    """Whether this runs as an RQ job (a worker other stores may need), not
    in a command or an inline run of its own."""
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover - rq is a dependency
        return False
    return get_current_job() is not None


def _store_waits(store: ExternalStore, until) -> int:
    """The store's credential is throttled: its due entries wait until `until`."""
    if until is None:
        return 0
    return StackEntry.objects.filter(store=store, state=StackEntry.State.WAITING, next_attempt_at__lt=until).update(
        next_attempt_at=until)


def _wait_for_soon_due(store: ExternalStore, deadline: float) -> bool:
    """Entries due within a second (a short backoff or Retry-After): wait for
    them here rather than for the next periodic sweep."""
    soonest = (
        StackEntry.objects.filter(store=store, state__in=OPEN_STATES)
        .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    )
    if soonest is None:
        return False
    wait = (soonest - timezone.now()).total_seconds()
    if wait <= 0:
        # Due but not claimable: another worker holds those products.
        return False
    if wait > 1.0 or time.monotonic() + wait >= deadline:
        return False
    time.sleep(wait + 0.01)
    return True


def _throttle_delay(exc: Throttled) -> float:
    """The platform's wait, spread a little so workers do not all return at
    once; our own shared budget's wait is exact already (the budget decides
    who goes first), and spreading it only loses the window's room."""
    return exc.retry_after if exc.own_budget else exc.retry_after * random.uniform(1, 1.3)


def _send_claim(store, connector, claim: _Claim, params: CartSettings, result: SweepResult) -> None:
    pending = {link.article_id: link for link in claim.links}
    orders_fresh = False
    for round_no in range(STALE_ROUNDS + 1):
        if not pending:
            return
        links = list(pending.values())
        try:
            moved = _read_back(store, connector, claim, links, result)
        except Throttled as exc:
            _settle_throttled(claim, links, exc, params, result)
            return
        except (ConnectorError, Unsupported) as exc:
            result.errors += len(links)
            result.failed += _settle_retry(claim, links, response=f"read-back failed: {exc.response}", delay=0,
                                           count_attempt=True, params=params)
            return
        if moved and not orders_fresh:
            # The store's figure moved since we last knew it (a stale answer
            # in an earlier sweep, or beside a timed-out send): its orders
            # come in before we recompute, or the figure we send would
            # overwrite the sales it made.
            if not _import_orders_quietly(store, result):
                result.failed += _settle_retry(claim, moved, response="the store moved, and the order import "
                                               "failed", delay=0, count_attempt=True, params=params)
                for link in moved:
                    pending.pop(link.article_id)
                links = [link for link in links if link.article_id in pending]
            orders_fresh = True
        links = [link for link in links if link.article_id in pending]
        if not links:
            return
        quantities = store_available(store=store, article_ids=[link.article_id for link in links])
        landed = [
            # A timed-out send that did land: the store already holds the figure.
            (link, quantities[link.article_id], "read back after an unknown outcome: already applied")
            for link in links
            if link.outcome_unknown and link.remote_quantity == quantities[link.article_id]
        ]
        result.settled_entries += _settle_sent(claim, landed)
        for link, _, _ in landed:
            pending.pop(link.article_id)
        links = [link for link in links if link.article_id in pending]
        if not links:
            return
        links = _still_ours(claim, links, params)
        for lost in set(pending) - {link.article_id for link in links}:
            pending.pop(lost)
        if not links:
            return
        updates = [
            QuantityUpdate(ref=link.remote_ref, quantity=quantities[link.article_id],
                           expected=link.remote_quantity if connector.compare_and_set else None)
            for link in links
        ]
        by_ref = {link.remote_ref: link for link in links}
        try:
            outcomes = connector.push_quantities(updates)
        except Throttled as exc:
            _settle_throttled(claim, links, exc, params, result)
            return
        except UnknownOutcome as exc:
            result.errors += len(links)
            result.failed += _settle_retry(claim, links, response=f"unknown outcome: {exc.response}", delay=0,
                                           count_attempt=True, params=params, unknown=True)
            return
        except (ConnectorError, Unsupported) as exc:
            result.errors += len(links)
            result.failed += _settle_retry(claim, links, response=exc.response, delay=0, count_attempt=True,
                                           params=params)
            return
        stale: list[ProductLink] = []
        sent: list[tuple[ProductLink, int, str]] = []
        for outcome, update in zip(outcomes, updates, strict=True):
            link = by_ref[outcome.ref]
            if outcome.status == "ok":
                result.sent += 1
                sent.append((link, update.quantity, _ok_text(outcome, update)))
                pending.pop(link.article_id)
            elif outcome.status == "stale":
                result.stale += 1
                stale.append(link)
            elif outcome.status == "unapplied":
                continue
            else:
                result.errors += 1
                result.failed += _settle_retry(claim, [link], response=outcome.message, delay=0,
                                               count_attempt=True, params=params)
                pending.pop(link.article_id)
        result.settled_entries += _settle_sent(claim, sent)
        if stale:
            # The store moved (usually a web order we have not imported):
            # import its orders, then read back and recompute before resending.
            orders_fresh = True
            if not _import_orders_quietly(store, result):
                # Without the store's orders a recomputed figure would
                # overwrite its sales: wait and try again later.
                result.failed += _settle_retry(claim, stale, response="stale, and the order import failed",
                                               delay=0, count_attempt=True, params=params)
                for link in stale:
                    pending.pop(link.article_id)
            # Whatever happens next (another stale answer, the last round, a
            # throttled read-back, a failed import), the base we sent is wrong:
            # the store's figure must be read again before any send, by this
            # round or by a later sweep, never resent from memory.
            ProductLink.objects.filter(pk__in=[link.pk for link in stale]).update(outcome_unknown=True)
            for link in stale:
                link.outcome_unknown = True
        if round_no == STALE_ROUNDS:
            result.failed += _settle_retry(claim, list(pending.values()),
                                           response="still stale after re-reading the store", delay=0,
                                           count_attempt=True, params=params)
            return


def _settle_throttled(claim: _Claim, links: list[ProductLink], exc: Throttled, params: CartSettings,
                      result: SweepResult) -> None:
    """Throttling costs no attempt: the products wait for the bucket."""
    delay = _throttle_delay(exc)
    result.throttled += len(links)
    _settle_retry(claim, links, response=exc.response, delay=delay, count_attempt=False, params=params)
    result.retry_at = timezone.now() + timedelta(seconds=delay)


def _still_ours(claim: _Claim, links: list[ProductLink], params: CartSettings) -> list[ProductLink]:
    """Before a send that comes late in a batch (read-backs, an order import),
    renew the claim; a product whose lease ran out may already be with
    another worker, which may have sent a newer figure: never send it here."""
    if time.monotonic() - claim.renewed_at < params.claim_seconds / 3:
        return links
    now = timezone.now()
    with transaction.atomic():
        kept = ProductLink.objects.filter(pk__in=[link.pk for link in links], claim_token=claim.token,
                                          claimed_until__gt=now)
        ids = set(kept.values_list("pk", flat=True))
        kept.update(claimed_until=now + timedelta(seconds=params.claim_seconds))
    claim.renewed_at = time.monotonic()
    return [link for link in links if link.pk in ids]


def _ok_text(outcome: PushOutcome, update: QuantityUpdate) -> str:
    base = f"ok: set {update.quantity}"
    if update.expected is not None:
        base += f" (from {update.expected})"
    return base


def _read_back(store, connector, claim: _Claim, links: list[ProductLink], result: SweepResult) -> list[ProductLink]:
    """Refresh `remote_quantity` where we do not know it for sure: after an
    unknown outcome or a stale answer, and before the first compare-and-set.
    Returns the products whose figure moved from what we last knew it to be
    other than to the figure we last sent (the store sold or was edited)."""
    need = [
        link for link in links
        if link.outcome_unknown or (connector.compare_and_set and link.remote_quantity is None)
    ]
    if not need:
        return []
    if not connector.supports_get_qoh:
        # Cannot read back: an absolute resend is harmless, so just send again.
        return []
    found = connector.fetch_quantities([link.remote_ref for link in need])
    result.readbacks += len(need)
    moved = []
    for link in need:
        known, link.remote_quantity = link.remote_quantity, found.get(link.remote_ref)
        if not quantity_within(link.remote_quantity or 0):
            link.remote_quantity = None  # beyond the system's bound: as unknown as no answer
        if known is not None and link.remote_quantity not in (known, link.last_sent_quantity):
            moved.append(link)
        ProductLink.objects.filter(pk=link.pk).update(remote_quantity=link.remote_quantity)
    return moved


def _import_orders_quietly(store, result: SweepResult) -> bool:
    from carts.services.orders import orders_import

    try:
        imported = orders_import(store=store)
    except Exception as exc:
        logger.warning("order import after a stale answer failed for %s: %s", store.code, exc)
        return False
    result.notes.append(f"imported {imported.orders} orders after a stale answer")
    return not imported.failures


def stack_retry(*, entry_ids) -> int:
    """Admin: put failed (or waiting) entries back as due now, attempts reset."""
    entries = StackEntry.objects.filter(pk__in=list(entry_ids), state__in=[StackEntry.State.FAILED,
                                                                           StackEntry.State.WAITING])
    store_ids = set(entries.values_list("store_id", flat=True))
    count = entries.update(state=StackEntry.State.WAITING, attempts=0, next_attempt_at=timezone.now())
    for store_id in store_ids:
        stack_wake_after_commit(store_id)
    return count


def stack_discard(*, entry_ids) -> int:
    """Admin: drop waiting or failed entries (a later change still queues anew)."""
    return StackEntry.objects.filter(
        pk__in=list(entry_ids), state__in=[StackEntry.State.FAILED, StackEntry.State.WAITING]
    ).update(state=StackEntry.State.DISCARDED, updated_at=timezone.now())


def stack_due_stores(*, now=None) -> list[int]:
    """Stores with entries due now (for the periodic sweep)."""
    now = now or timezone.now()
    claim_seconds = cart_settings_get().claim_seconds
    claim_expired = Q(state=StackEntry.State.SENDING, updated_at__lt=now - timedelta(seconds=claim_seconds))
    return sorted(set(
        StackEntry.objects.filter(Q(state=StackEntry.State.WAITING, next_attempt_at__lte=now) | claim_expired)
        .values_list("store_id", flat=True)
    ))
