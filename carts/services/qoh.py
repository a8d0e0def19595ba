"""Send QOH / Get QOH: a full push or pull of absolute quantities, and the
reconcile report comparing a store with the ledger. These refresh everything
at once; real-time sync is the web stack's job (seed 003)."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from carts.models import ExternalStore, ProductLink, StackEntry
from carts.services.stack import stack_entries_add, stack_sweep
from carts.services.stores import (
    reservations_for,
    store_available,
    store_connector,
    store_order_location,
    store_receives_stock,
)
from posinv.bounds import quantity_problem, quantity_within
from posinv.exceptions import InvalidInput, Problem
from posinv.models import StockLevel, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

Progress = Callable[[int, int], None]


@dataclass
class SendResult:
    """Counted over this run's own entries (one per linked product), whoever
    sent them: this call's sweeps or any rqworker running meanwhile."""

    queued: int = 0
    sent: int = 0
    waiting: int = 0  # still in flight when the time budget ran out (waiting for a retry, or being sent)
    failed: int = 0
    http_calls: int = 0  # made by this call itself (workers' calls are theirs)
    next_attempt_at: str = ""  # the earliest retry among those still waiting (ISO 8601)


def qoh_send(*, store: ExternalStore, progress: Progress | None = None, time_budget: float = 600,
             poll_seconds: float = 0.2, retry_within: float = 5) -> SendResult:
    """Queue every linked article's available-to-sell for `store` and send
    them now (the same controller as real-time sync, so batching, rate
    budget and compare-and-set apply). Workers running at the same time may
    claim some of the products first (they skip what we hold and we skip what
    they hold): the result follows this run's entries to their real outcome,
    observing what the workers do, until all are settled, or `time_budget`
    runs out, or what is left waits for a retry further off than
    `retry_within` seconds (the store is failing: the stack carries on with
    it), and then says what is still in flight."""
    article_ids = list(ProductLink.objects.filter(store=store).values_list("article_id", flat=True))
    if not store_receives_stock(store):
        raise InvalidInput([Problem(field="sync_inventory", reason=f"{store.code} does not synchronize inventory")])
    result = SendResult()
    run = f"send-qoh:{uuid.uuid4().hex[:12]}"
    with transaction.atomic():
        result.queued = stack_entries_add(store=store, article_ids=article_ids, origin=("user", run))
    ours = StackEntry.objects.filter(store=store, origin="user", origin_code=run)
    total = result.queued
    deadline = time.monotonic() + time_budget
    while True:
        open_entries = ours.filter(state__in=[StackEntry.State.WAITING, StackEntry.State.SENDING]).count()
        if progress:
            progress(total - open_entries, total)
        if not open_entries or time.monotonic() >= deadline:
            break
        soon = timezone.now() + timedelta(seconds=retry_within)
        if not ours.filter(Q(state=StackEntry.State.SENDING)
                           | Q(state=StackEntry.State.WAITING, next_attempt_at__lte=soon)).exists():
            break  # the rest back off for longer (the store fails): the stack carries on, we report them
        sweep = stack_sweep(store_id=store.pk, time_budget=max(0.1, min(30, deadline - time.monotonic())))
        result.http_calls += sweep.http_calls
        if not sweep.claimed:
            # Nothing due for us to claim: other workers hold our products, or
            # they wait for a retry. Watch rather than spin.
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
    states = dict(ours.values("state").annotate(n=Count("id")).values_list("state", "n"))
    result.sent = states.get(StackEntry.State.SENT, 0)
    result.failed = states.get(StackEntry.State.FAILED, 0) + states.get(StackEntry.State.DISCARDED, 0)
    result.waiting = states.get(StackEntry.State.WAITING, 0) + states.get(StackEntry.State.SENDING, 0)
    retry = (ours.filter(state=StackEntry.State.WAITING).order_by("next_attempt_at")
             .values_list("next_attempt_at", flat=True).first())
    if retry:
        result.next_attempt_at = retry.isoformat(timespec="seconds")
    return result


@dataclass
class GetResult:
    read: int = 0
    counted: int = 0
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)
    # Products whose figure could not be reached at the order location alone,
    # with the reason (nothing was posted for them).
    refused: list[str] = field(default_factory=list)
    # Products whose decrease was taken partly from the store's other locations.
    spread: list[str] = field(default_factory=list)


def qoh_get(*, store: ExternalStore, confirm: bool = False, take_from_other_locations: bool = False,
            progress: Progress | None = None) -> GetResult:
    """Take the store's quantities into the ledger as counts so that our
    available-to-sell for the store then equals the store's figure.

    The difference goes to the store's order location. When the store sells
    from several locations and its figure is lower than what the other
    locations hold alone, the order location cannot absorb the drop (it
    would go below zero): the product is refused with the figures, unless
    `take_from_other_locations`, which takes the rest from the other
    locations in the order of their codes, each down to zero. Never clamped
    silently. A pull that would zero most products is held unless `confirm`
    (a broken feed must not wipe good stock)."""
    connector = store_connector(store=store)
    if not connector.supports_get_qoh:
        raise InvalidInput([Problem(field="platform", reason=f"{connector.label} cannot report quantities")])
    links = list(ProductLink.objects.filter(store=store).select_related("article"))
    refs = [link.remote_ref for link in links]
    remote: dict[str, int] = {}
    for start in range(0, len(refs), 100):
        remote.update(connector.fetch_quantities(refs[start:start + 100]))
        if progress:
            progress(min(start + 100, len(refs)), len(refs))
    result = GetResult(read=len(remote))
    # A figure beyond the system's bound (posinv/bounds.py) is neither counted
    # nor stored; the other products still are.
    result.refused.extend(sorted(
        f"{link.article.sku}: the store shows {remote[link.remote_ref]}, which "
        f"{quantity_problem(remote[link.remote_ref])}"
        for link in links if link.remote_ref in remote and not quantity_within(remote[link.remote_ref])
    ))
    result.missing = sorted(link.article.sku for link in links if link.remote_ref not in remote)
    remote = {ref: value for ref, value in remote.items() if quantity_within(value)}
    ours = store_available(store=store, article_ids=[link.article_id for link in links])
    zeroed = [link for link in links if remote.get(link.remote_ref) == 0 and ours[link.article_id] > 0]
    if not confirm and len(links) >= 4 and len(zeroed) * 2 > len(links):
        raise InvalidInput([Problem(
            field="confirm", code="implausible",
            reason=f"{len(zeroed)} of {len(links)} products would drop to zero; check the store and confirm",
        )])
    order_location = store_order_location(store=store)
    locations = sorted(store.locations.all(), key=lambda loc: loc.code)
    if order_location.pk not in {loc.pk for loc in locations}:
        raise InvalidInput([Problem(
            field="order_location",
            reason=f"{order_location.code} is not among the locations {store.code} sells, so counts there cannot "
                   "bring our available-to-sell to the store's figure; add it to the store's locations")])
    article_ids = [link.article_id for link in links if link.remote_ref in remote]
    levels: dict[tuple[int, int], Decimal] = {
        (article_id, location_id): on_hand
        for article_id, location_id, on_hand in StockLevel.objects.filter(
            article_id__in=article_ids, location_id__in=[loc.pk for loc in locations]
        ).values_list("article_id", "location_id", "on_hand")
    }
    reserved = reservations_for(location_ids=[loc.pk for loc in locations], article_ids=article_ids, for_store=store)
    run = uuid.uuid4().hex[:12]
    moves = []
    refused_refs = set()
    for link in sorted(links, key=lambda link: link.article.sku):
        if link.remote_ref not in remote:
            continue
        figure = remote[link.remote_ref]
        if figure == ours[link.article_id]:
            result.unchanged += 1
            continue
        current = {loc.pk: levels.get((link.article_id, loc.pk), Decimal(0)) for loc in locations}
        # The on-hand total at the store's locations that gives exactly `figure`.
        target = Decimal(figure) + store.safety_buffer + reserved.get(link.article_id, Decimal(0))
        change = target - sum(current.values(), Decimal(0))
        counts = _counts_reaching(change, current, order_location.pk, [loc.pk for loc in locations],
                                  spread=take_from_other_locations)
        if counts is None:
            others = ", ".join(f"{loc.code} {_qty(current[loc.pk])}" for loc in locations
                               if loc.pk != order_location.pk)
            result.refused.append(
                f"{link.article.sku}: the store shows {figure}; reaching it takes {_qty(-change)} off, but the order "
                f"location {order_location.code} holds {_qty(current[order_location.pk])} (other locations: "
                f"{others}); "
                "count those locations, or run again with --take-from-other-locations")
            refused_refs.add(link.remote_ref)
            continue
        if len(counts) > 1:
            result.spread.append(link.article.sku)
        for location_id, counted in counts.items():
            moves.append(MoveSpec(kind=StockMove.Kind.COUNT, counted=counted, article_id=link.article_id,
                                  location_id=location_id, reference=f"Get QOH from {store.code}",
                                  idempotency_key=f"getqoh:{store.code}:{run}:{link.article_id}:{location_id}"))
        result.counted += 1
    if moves:
        # Origin "store": the counts reach every other cart, not this one.
        stock_moves_post(moves=moves, origin=StockOrigin("store", store.code))
    counted_refs = [ref for ref in remote if ref not in refused_refs]
    ProductLink.objects.filter(store=store, remote_ref__in=counted_refs).update(outcome_unknown=False)
    for link in links:
        if link.remote_ref in counted_refs:
            ProductLink.objects.filter(pk=link.pk).update(remote_quantity=remote[link.remote_ref])
    return result


def _qty(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _counts_reaching(change: Decimal, current: dict[int, Decimal], order_location_id: int,
                     location_ids: list[int], *, spread: bool) -> dict[int, Decimal] | None:
    """The counts (location -> new on hand) that change the total by
    `change`: all of it at the order location when it can take it, else
    (with `spread`) the rest off the other locations in code order, each down
    to zero; None when that cannot be done."""
    at_order = current[order_location_id]
    if change >= 0 or at_order + change >= 0:
        return {order_location_id: at_order + change}
    if not spread:
        return None
    counts = {order_location_id: Decimal(0)} if at_order > 0 else {}
    rest = -change - max(at_order, Decimal(0))
    for location_id in location_ids:
        if location_id == order_location_id or rest <= 0 or current[location_id] <= 0:
            continue
        taken = min(current[location_id], rest)
        counts[location_id] = current[location_id] - taken
        rest -= taken
    return counts if rest <= 0 else None


def qoh_reconcile(*, store: ExternalStore) -> list[dict]:
    """Where the store and the ledger disagree: one row per linked product
    whose store quantity differs from our available-to-sell (or is missing)."""
    connector = store_connector(store=store)
    links = list(ProductLink.objects.filter(store=store).select_related("article").order_by("article__sku"))
    remote = connector.fetch_quantities([link.remote_ref for link in links])
    ours = store_available(store=store, article_ids=[link.article_id for link in links])
    rows = []
    for link in links:
        theirs = remote.get(link.remote_ref)
        if theirs != ours[link.article_id]:
            rows.append({"sku": link.article.sku, "ref": link.remote_ref, "ledger": ours[link.article_id],
                         "store": theirs, "difference": None if theirs is None else theirs - ours[link.article_id]})
    return rows
