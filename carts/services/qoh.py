"""Send QOH / Get QOH: a full push or pull of absolute quantities, and the
reconcile report comparing a store with the ledger. These refresh everything
at once; real-time sync is the web stack's job (seed 003)."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from carts.models import ExternalStore, ProductLink, StackEntry
from carts.services.stack import stack_entries_add, stack_sweep
from carts.services.stores import (
    reservations_for,
    store_available,
    store_connector,
    store_location_ids,
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
    queued: int = 0
    sent: int = 0
    waiting: int = 0
    failed: int = 0
    http_calls: int = 0


def qoh_send(*, store: ExternalStore, progress: Progress | None = None, time_budget: float = 600) -> SendResult:
    """Queue every linked article's available-to-sell for `store` and send
    them now (the same controller as real-time sync, so batching, rate
    budget and compare-and-set apply)."""
    article_ids = list(ProductLink.objects.filter(store=store).values_list("article_id", flat=True))
    if not store_receives_stock(store):
        raise InvalidInput([Problem(field="sync_inventory", reason=f"{store.code} does not synchronize inventory")])
    result = SendResult()
    with transaction.atomic():
        result.queued = stack_entries_add(store=store, article_ids=article_ids, origin=("user", "send-qoh"))
    total = len(article_ids)
    done = 0
    deadline = time.monotonic() + time_budget
    while time.monotonic() < deadline:
        sweep = stack_sweep(store_id=store.pk, time_budget=min(30, deadline - time.monotonic()))
        result.http_calls += sweep.http_calls
        done = total - _open_products(store)
        if progress:
            progress(done, total)
        if not sweep.claimed:
            break
    result.sent = done
    result.waiting = _open_products(store)
    result.failed = StackEntry.objects.filter(store=store, state=StackEntry.State.FAILED).count()
    return result


def _open_products(store: ExternalStore) -> int:
    return (
        StackEntry.objects.filter(store=store, state__in=[StackEntry.State.WAITING, StackEntry.State.SENDING])
        .values("article_id").distinct().count()
    )


@dataclass
class GetResult:
    read: int = 0
    counted: int = 0
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)
    beyond: list[str] = field(default_factory=list)


def qoh_get(*, store: ExternalStore, confirm: bool = False, progress: Progress | None = None) -> GetResult:
    """Take the store's quantities into the ledger as counts at the store's
    order location, so that our available-to-sell then equals the store's.
    A pull that would zero most products is held unless `confirm` (a broken
    feed must not wipe good stock)."""
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
    result.beyond = sorted(
        f"{link.article.sku}: {remote[link.remote_ref]} {quantity_problem(remote[link.remote_ref])}"
        for link in links if link.remote_ref in remote and not quantity_within(remote[link.remote_ref])
    )
    result.missing = sorted(link.article.sku for link in links if link.remote_ref not in remote)
    remote = {ref: value for ref, value in remote.items() if quantity_within(value)}
    ours = store_available(store=store, article_ids=[link.article_id for link in links])
    zeroed = [link for link in links if remote.get(link.remote_ref) == 0 and ours[link.article_id] > 0]
    if not confirm and len(links) >= 4 and len(zeroed) * 2 > len(links):
        raise InvalidInput([Problem(
            field="confirm", code="implausible",
            reason=f"{len(zeroed)} of {len(links)} products would drop to zero; check the store and confirm",
        )])
    location = store_order_location(store=store)
    location_ids = store_location_ids(store=store)
    article_ids = [link.article_id for link in links if link.remote_ref in remote]
    elsewhere = {
        row["article_id"]: row["total"]
        for row in StockLevel.objects.filter(article_id__in=article_ids, location_id__in=location_ids)
        .exclude(location_id=location.pk).values("article_id").annotate(total=Sum("on_hand"))
    }
    reserved = reservations_for(location_ids=location_ids, article_ids=article_ids)
    run = uuid.uuid4().hex[:12]
    moves = []
    for link in links:
        if link.remote_ref not in remote:
            continue
        if remote[link.remote_ref] == ours[link.article_id]:
            result.unchanged += 1
            continue
        counted = (Decimal(remote[link.remote_ref]) + store.safety_buffer + reserved.get(link.article_id, 0)
                   - elsewhere.get(link.article_id, Decimal(0)))
        moves.append(MoveSpec(kind=StockMove.Kind.COUNT, idempotency_key=f"getqoh:{store.code}:{run}:{link.article_id}",
                              counted=max(counted, Decimal(0)), article_id=link.article_id, location_id=location.pk,
                              reference=f"Get QOH from {store.code}"))
    if moves:
        # Origin "store": the counts reach every other cart, not this one.
        stock_moves_post(moves=moves, origin=StockOrigin("store", store.code))
        ProductLink.objects.filter(store=store, remote_ref__in=list(remote)).update(outcome_unknown=False)
        for link in links:
            if link.remote_ref in remote:
                ProductLink.objects.filter(pk=link.pk).update(remote_quantity=remote[link.remote_ref])
    result.counted = len(moves)
    return result


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
