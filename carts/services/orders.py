"""Order import: orders fetched from a store since its cursor (or pushed by
its webhook) are stored with their lines and move stock through the ledger.

Each order is applied in one transaction, keyed by (store, external id), with
its moves keyed by store, order and line, so a webhook racing a poll, or a
re-fetch after a partial failure, never moves stock twice. A pending order
reserves stock (it lowers available-to-sell without a move); an open one posts
sales; a cancellation or refund posts returns. A line whose SKU we do not know
is kept with its reason and retried. Connectors on the shared cursor
(`fetch_orders_page`) follow its one rule (carts/services/order_cursor.py:
overlapping (modified_at, id), deduplicated, saved only after commit); the
others still save theirs only after every fetched order is committed."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carts.connectors.base import RemoteOrder
from carts.models import ExternalStore, ImportedOrder, ImportedOrderLine
from carts.services.order_cursor import orders_import_by_cursor
from carts.services.stack import stack_stores_add
from carts.services.stores import store_connector, store_order_location
from posinv.api.parsers import unstorable_text_problem
from posinv.bounds import quantity_problem, quantity_within
from posinv.exceptions import DomainError, InvalidInput, Problem
from posinv.models import Article, Barcode, StockMove
from posinv.services.leases import leased
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

logger = logging.getLogger(__name__)

Line = ImportedOrderLine.State


@dataclass
class ImportResult:
    orders: int = 0
    lines_posted: int = 0
    lines_unknown: int = 0
    skipped: bool = False
    failures: list[str] = field(default_factory=list)
    # Set when the platform's limit cut the import short (in a worker, which
    # does not wait for it): the seconds it asked for; the cursor holds what
    # was committed, so the next run goes on from there.
    throttled_for: float | None = None


def _key(store: ExternalStore, order_id: str, line_id: str, what: str) -> str:
    key = f"cart:{store.code}:{order_id}:{line_id}:{what}"
    if len(key) <= 200:
        return key
    return f"cart:{store.code}:{hashlib.sha256(key.encode()).hexdigest()}:{what}"


def _resolve_articles(lines) -> tuple[dict[str, int], dict[str, int]]:
    skus = {line.sku for line in lines if line.sku}
    codes = {line.barcode.zfill(14) for line in lines if line.barcode and line.barcode.isdigit()}
    by_sku = dict(Article.objects.filter(sku__in=skus).values_list("sku", "pk")) if skus else {}
    by_gtin = dict(Barcode.objects.filter(gtin__in=codes).values_list("gtin", "article_id")) if codes else {}
    return by_sku, by_gtin


def order_apply(*, store: ExternalStore, remote: RemoteOrder) -> ImportedOrder:
    """Store `remote` (new or changed) and move stock to match its status."""
    with transaction.atomic():
        order, created = ImportedOrder.objects.select_for_update().get_or_create(
            store=store, external_id=remote.external_id,
            defaults={"number": remote.number, "status": remote.status, "remote_status": remote.remote_status,
                      "placed_at": remote.placed_at, "remote_updated_at": remote.updated_at, "raw": remote.raw},
        )
        if not created:
            # Statuses only move forward (pending -> open -> cancelled/refunded):
            # an older copy arriving late (webhook vs poll) must not reopen an order.
            if _rank(remote.status) >= _rank(order.status):
                order.status = remote.status
            order.number = remote.number or order.number
            order.remote_status = remote.remote_status
            order.remote_updated_at = remote.updated_at or order.remote_updated_at
            order.raw = remote.raw
            order.save(update_fields=["status", "number", "remote_status", "remote_updated_at", "raw", "updated_at"])
        existing = {line.line_id: line for line in order.lines.all()}
        for remote_line in remote.lines:
            beyond = _beyond_bound(remote_line)
            line = existing.get(remote_line.line_id)
            if line is None:
                line = ImportedOrderLine(order=order, line_id=remote_line.line_id, quantity=remote_line.quantity,
                                         state=Line.UNKNOWN_SKU)
                if beyond:
                    line.quantity, line.state, line.reason = Decimal(0), Line.HELD, beyond
            elif _parked(line) and not beyond:
                # The store corrected a line it first sent beyond the bound.
                line.quantity, line.state, line.reason = remote_line.quantity, Line.UNKNOWN_SKU, ""
            line.sku = remote_line.sku[:120]
            line.barcode = remote_line.barcode[:40]
            line.title = remote_line.title[:200]
            if not beyond:
                line.refunded_quantity = max(line.refunded_quantity, remote_line.refunded_quantity)
            line.save()
            existing[line.line_id] = line
        _settle(store, order, list(existing.values()))
    return order


def _beyond_bound(remote_line) -> str:
    """Why a line's figures cannot be taken (beyond the system's quantity
    bound, posinv/bounds.py), or "". Such a line is parked, held with
    quantity 0 and this reason, so the rest of the order and of the import
    still apply."""
    for name in ("quantity", "refunded_quantity"):
        value = getattr(remote_line, name)
        if not quantity_within(value):
            return f"the store sent {name} {value}: {quantity_problem(value)}; this line moves no stock"[:300]
    return ""


def _parked(line: ImportedOrderLine) -> bool:
    return line.state == Line.HELD and not line.quantity


def _rank(status: str) -> int:
    return {"pending": 0, "open": 1, "cancelled": 2, "refunded": 2}[status]


def _settle(store: ExternalStore, order: ImportedOrder, lines: list[ImportedOrderLine]) -> None:
    """Bring every line to the state its order's status asks for, posting the
    moves that takes in one ledger batch."""
    location = store_order_location(store=store)
    by_sku, by_gtin = _resolve_articles(lines)
    moves: list[tuple[ImportedOrderLine, MoveSpec, str]] = []
    reservation_changed: set[int] = set()
    for line in lines:
        if _parked(line) and order.status in ("pending", "open"):
            continue  # a figure beyond the bound: waits for the store to correct it
        if line.article_id is None:
            article_id = by_sku.get(line.sku) or (by_gtin.get(line.barcode.zfill(14)) if line.barcode else None)
            if article_id is None:
                if order.status in ("cancelled", "refunded"):
                    line.state, line.reason = Line.VOID, "cancelled before its SKU was known"
                else:
                    line.state = Line.UNKNOWN_SKU
                    line.reason = f"no article with SKU {line.sku!r}" + (
                        f" or barcode {line.barcode!r}" if line.barcode else "")
                line.save(update_fields=["state", "reason"])
                continue
            line.article_id = article_id
        base = dict(article_id=line.article_id, location_id=location.pk, reference=f"{store.code}:{order.number}")
        if order.status == "pending":
            if line.state in (Line.UNKNOWN_SKU, Line.HELD):
                line.state, line.reason = Line.RESERVED, ""
                reservation_changed.add(line.article_id)
        elif order.status == "open":
            if line.state in (Line.UNKNOWN_SKU, Line.HELD, Line.RESERVED):
                if line.state == Line.RESERVED:
                    reservation_changed.add(line.article_id)
                moves.append((line, MoveSpec(kind=StockMove.Kind.ORDER,
                                             idempotency_key=_key(store, order.external_id, line.line_id, "sale"),
                                             quantity=-line.quantity, **base), Line.POSTED))
            elif line.state == Line.POSTED and line.refunded_quantity > line.returned_quantity:
                moves.append((line, MoveSpec(
                    kind=StockMove.Kind.RETURN,
                    idempotency_key=_key(store, order.external_id, line.line_id, f"return:{line.refunded_quantity}"),
                    quantity=line.refunded_quantity - line.returned_quantity, **base), Line.POSTED))
        else:  # cancelled or refunded: everything comes back
            if line.state == Line.RESERVED:
                line.state, line.reason = Line.VOID, ""
                reservation_changed.add(line.article_id)
            elif line.state in (Line.UNKNOWN_SKU, Line.HELD):
                line.state, line.reason = Line.VOID, "cancelled before it was posted"
            elif line.state == Line.POSTED and line.quantity > line.returned_quantity:
                moves.append((line, MoveSpec(
                    kind=StockMove.Kind.RETURN,
                    idempotency_key=_key(store, order.external_id, line.line_id, f"return:{line.quantity}"),
                    quantity=line.quantity - line.returned_quantity, **base), Line.RETURNED))
        line.save(update_fields=["article", "state", "reason"])
    if moves:
        outcome = stock_moves_post(moves=[spec for _, spec, _ in moves],
                                   origin=StockOrigin("store", store.code), partial_ok=True)
        for (line, spec, new_state), result in zip(moves, outcome.results, strict=True):
            if result.status == "refused":
                line.state = Line.HELD
                line.reason = f"ledger refused: {result.problem.reason}"[:300]
            else:
                if spec.kind == StockMove.Kind.RETURN:
                    line.returned_quantity = line.returned_quantity + spec.quantity
                line.state, line.reason = new_state, ""
            line.save(update_fields=["state", "reason", "returned_quantity"])
    if reservation_changed:
        # Reservations are not ledger moves: tell the other carts ourselves.
        stack_stores_add(article_ids=reservation_changed, location_id=location.pk, exclude_store_id=store.pk,
                         origin=("store", store.code))


def orders_import(*, store: ExternalStore, wait_for_limits: bool = True) -> ImportResult:
    """Fetch orders changed since the store's cursor and apply them; the
    cursor moves only when every fetched order was committed. One importer
    per store at a time (a lease)."""
    result = ImportResult()
    with leased(f"cart-orders:{store.pk}", seconds=300) as acquired:
        if not acquired:
            result.skipped = True
            return result
        connector = store_connector(store=store)
        if connector.pages_orders_by_modification():
            # In a worker the import sleeps only short waits for a platform's
            # limit (a page's worth of bucket); a longer one ends the run (the
            # cursor is saved per page) and gives the worker back.
            if not wait_for_limits:
                connector.max_single_wait = settings.POSINV_RATE_INLINE_WAIT_SECONDS
            _import_by_cursor(store, connector, result)
            result.lines_unknown = order_lines_retry(store=store)
            return result
        remote_orders, cursor = connector.fetch_orders(dict(store.order_cursor or {}))
        for remote in remote_orders:
            try:
                order_apply(store=store, remote=remote)
                result.orders += 1
            except Exception as exc:
                logger.exception("order %s of %s could not be applied", remote.external_id, store.code)
                result.failures.append(f"{remote.external_id}: {exc}")
        if not result.failures:
            ExternalStore.objects.filter(pk=store.pk).update(order_cursor=cursor, last_order_import_at=timezone.now())
            store.order_cursor = cursor
        result.lines_unknown = order_lines_retry(store=store)
    return result


def _import_by_cursor(store: ExternalStore, connector, result: ImportResult) -> None:
    """The shared (modified_at, id) cursor rule (carts/services/order_cursor.py)."""

    def save(cursor: dict) -> None:
        ExternalStore.objects.filter(pk=store.pk).update(order_cursor=cursor)
        store.order_cursor = cursor

    run = orders_import_by_cursor(connector=connector, stored=dict(store.order_cursor or {}),
                                  apply=lambda remote: order_apply(store=store, remote=remote), save=save)
    result.orders, result.failures, result.throttled_for = run.applied, run.failures, run.throttled_for
    for failure in run.failures:
        logger.error("order %s of %s could not be applied; the cursor stays before it", failure, store.code)
    if not run.failures and run.throttled_for is None:
        ExternalStore.objects.filter(pk=store.pk).update(last_order_import_at=timezone.now())


def order_lines_retry(*, store: ExternalStore) -> int:
    """Try again the lines kept for an unknown SKU or a ledger refusal;
    returns how many are still waiting."""
    orders = ImportedOrder.objects.filter(store=store, lines__state__in=[Line.UNKNOWN_SKU, Line.HELD]).distinct()
    for order in orders:
        with transaction.atomic():
            order = ImportedOrder.objects.select_for_update().get(pk=order.pk)
            _settle(store, order, list(order.lines.all()))
    return ImportedOrderLine.objects.filter(order__store=store, state__in=[Line.UNKNOWN_SKU, Line.HELD]).count()


def orders_receive_webhook(*, store: ExternalStore, body: bytes, headers) -> list[ImportedOrder]:
    """A pushed order (or several): verify the signature, then apply."""
    connector = store_connector(store=store)
    if not connector.pushes_orders:
        raise DomainError([Problem(field="store", reason=f"{store.platform} does not push orders")])
    if not connector.verify_webhook(body=body, headers=headers):
        raise WebhookRejected([Problem(field="signature", reason="missing or invalid signature", code="forbidden")])
    try:
        remotes = connector.parse_webhook(body=body, headers=headers)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput([Problem(field="body", reason=f"not an order of {store.platform}: {exc!r}")]) from exc
    for remote in remotes:
        problem = unstorable_text_problem(remote.raw)
        if problem is not None:
            raise InvalidInput([problem])
    return [order_apply(store=store, remote=remote) for remote in remotes]


class WebhookRejected(DomainError):
    """A pushed order whose signature does not verify (403); nothing is applied."""

    status = 403
