"""Purchasing: open order suggestions grouped per supplier into draft
purchase orders (rounded to packs and minimums), sending, and receiving
deliveries, which post receipt moves through the ledger (idempotent per
delivery note and line)."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Max, Sum
from django.utils import timezone

from backoffice.models import GoodsReceipt, GoodsReceiptLine, PurchaseOrder, PurchaseOrderLine, SupplierArticle
from posinv.exceptions import Conflict, InvalidInput, NotFound, Problem
from posinv.models import ReorderSuggestion, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

OPEN_ORDER_STATES = (
    PurchaseOrder.State.DRAFT,
    PurchaseOrder.State.SENT,
    PurchaseOrder.State.PARTLY_RECEIVED,
)
RECEIVABLE_STATES = (PurchaseOrder.State.SENT, PurchaseOrder.State.PARTLY_RECEIVED)
QTY = Decimal("0.001")


def order_quantity_round(*, needed: Decimal, pack_size: Decimal, min_order_qty: Decimal) -> Decimal:
    """The quantity to order for `needed`: at least the minimum order, in
    whole packs (rounded up)."""
    wanted = max(needed, min_order_qty)
    packs = math.ceil(wanted / pack_size)
    return (pack_size * packs).quantize(QTY)


def on_order_quantities(*, pairs: set[tuple[int, int]] | None = None) -> dict[tuple[int, int], Decimal]:
    """Ordered but not yet received, per (article, location), over open orders."""
    outstanding = ExpressionWrapper(
        F("quantity_ordered") - F("quantity_received"), output_field=DecimalField(max_digits=14, decimal_places=3)
    )
    rows = PurchaseOrderLine.objects.filter(order__state__in=OPEN_ORDER_STATES)
    if pairs is not None:
        rows = rows.filter(article_id__in={a for a, _ in pairs}, order__location_id__in={loc for _, loc in pairs})
    return {
        (article_id, location_id): quantity
        for article_id, location_id, quantity in rows.values_list("article_id", "order__location_id")
        .annotate(quantity=Sum(outstanding))
        .order_by()
    }


@dataclass
class DraftResult:
    """Orders created or extended, lines written, and suggestions left out
    (already on order, or no supplier for the article) with the reason."""

    orders: list[PurchaseOrder] = field(default_factory=list)
    lines_written: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def purchase_order_create(*, supplier_id: int, location_id: int, note: str = "") -> PurchaseOrder:
    """A new draft order numbered PO-<id> (the id is known only after the
    insert, so a unique placeholder goes in first, in the same transaction)."""
    with transaction.atomic():
        order = PurchaseOrder.objects.create(
            number=f"new-{uuid.uuid4().hex[:28]}", supplier_id=supplier_id, location_id=location_id, note=note
        )
        order.number = f"PO-{order.pk:06d}"
        PurchaseOrder.objects.filter(pk=order.pk).update(number=order.number)
    return order


def purchase_orders_draft(*, suggestion_ids: Sequence[int] | None = None) -> DraftResult:
    """Group the open suggestions (all, or the given ones) by the article's
    preferred supplier and the location into draft purchase orders: one
    draft per supplier and location, reused while it is a draft. The
    quantity is what the suggestion asks minus what is already on order,
    rounded up to whole packs and at least the minimum order quantity.
    Running it again orders nothing twice."""
    result = DraftResult()
    with transaction.atomic(durable=True):
        suggestions = ReorderSuggestion.objects.select_for_update().filter(state=ReorderSuggestion.State.OPEN)
        if suggestion_ids is not None:
            suggestions = suggestions.filter(pk__in=suggestion_ids)
        suggestions = list(suggestions.order_by("pk"))
        if not suggestions:
            return result
        pairs = {(s.article_id, s.location_id) for s in suggestions}
        on_order = on_order_quantities(pairs=pairs)
        preferred = {
            sa.article_id: sa
            for sa in SupplierArticle.objects.filter(
                preferred=True, supplier__active=True, article_id__in={a for a, _ in pairs}
            ).select_related("supplier")
        }
        groups: dict[tuple[int, int], list[tuple[ReorderSuggestion, SupplierArticle, Decimal]]] = defaultdict(list)
        for suggestion in suggestions:
            supplier_article = preferred.get(suggestion.article_id)
            if supplier_article is None:
                result.skipped.append((suggestion.pk, "no preferred active supplier for this article"))
                continue
            needed = suggestion.suggested_quantity - on_order.get((suggestion.article_id, suggestion.location_id), 0)
            if needed <= 0:
                result.skipped.append((suggestion.pk, "already on order"))
                continue
            groups[(supplier_article.supplier_id, suggestion.location_id)].append(
                (suggestion, supplier_article, needed)
            )
        for (supplier_id, location_id), items in sorted(groups.items()):
            order = (
                PurchaseOrder.objects.select_for_update()
                .filter(supplier_id=supplier_id, location_id=location_id, state=PurchaseOrder.State.DRAFT)
                .order_by("pk")
                .first()
            )
            if order is None:
                order = purchase_order_create(supplier_id=supplier_id, location_id=location_id)
            existing = {line.article_id: line for line in order.lines.all()}
            next_no = (order.lines.aggregate(n=Max("line_no"))["n"] or 0) + 1
            for suggestion, supplier_article, needed in items:
                line = existing.get(suggestion.article_id)
                base = line.quantity_ordered if line else Decimal(0)
                quantity = order_quantity_round(
                    needed=base + needed,
                    pack_size=supplier_article.pack_size,
                    min_order_qty=supplier_article.min_order_qty,
                )
                if line:
                    PurchaseOrderLine.objects.filter(pk=line.pk).update(
                        quantity_ordered=quantity, suggestion=suggestion
                    )
                else:
                    PurchaseOrderLine.objects.create(
                        order=order,
                        line_no=next_no,
                        article_id=suggestion.article_id,
                        supplier_article=supplier_article,
                        quantity_ordered=quantity,
                        unit_cost=supplier_article.cost,
                        suggestion=suggestion,
                    )
                    next_no += 1
                result.lines_written += 1
            result.orders.append(order)
    return result


def _order_locked(order_id: int) -> PurchaseOrder:
    order = PurchaseOrder.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound([Problem(field="order", reason=f"no purchase order with id {order_id}", code="not_found")])
    return order


def _transition(order: PurchaseOrder, allowed: Sequence[str], new_state: str, **values) -> None:
    """One guarded UPDATE: refuses unless the order is in an allowed state."""
    moved = PurchaseOrder.objects.filter(pk=order.pk, state__in=allowed).update(state=new_state, **values)
    if not moved:
        raise InvalidInput(
            [
                Problem(
                    field="state",
                    code="illegal_transition",
                    reason=f"{order.number} is {order.get_state_display().lower()}; "
                    f"cannot go to {PurchaseOrder.State(new_state).label.lower()}",
                )
            ]
        )


def purchase_order_send(*, order_id: int) -> PurchaseOrder:
    """Draft → sent. An order without lines cannot be sent."""
    with transaction.atomic(durable=True):
        order = _order_locked(order_id)
        if order.state == PurchaseOrder.State.DRAFT and not order.lines.exists():
            raise InvalidInput([Problem(field="lines", reason=f"{order.number} has no lines")])
        _transition(order, [PurchaseOrder.State.DRAFT], PurchaseOrder.State.SENT, sent_at=timezone.now())
    order.refresh_from_db()
    return order


def purchase_order_cancel(*, order_id: int) -> PurchaseOrder:
    """Draft or sent → cancelled (not once goods arrived)."""
    with transaction.atomic(durable=True):
        order = _order_locked(order_id)
        _transition(order, [PurchaseOrder.State.DRAFT, PurchaseOrder.State.SENT], PurchaseOrder.State.CANCELLED)
    order.refresh_from_db()
    return order


@dataclass(frozen=True)
class ReceiveSpec:
    """A quantity of one order line (by line no.) that arrived."""

    line_no: int
    quantity: Decimal


@dataclass
class ReceiveResult:
    order: PurchaseOrder
    receipt: GoodsReceipt
    duplicate: bool = False
    move_ids: dict[int, int] = field(default_factory=dict)


def _receive_problems(order: PurchaseOrder, delivery_note: str, lines: Sequence[ReceiveSpec], by_no: dict) -> list:
    problems = []
    if not delivery_note or len(delivery_note) > 64:
        problems.append(Problem(field="delivery_note", reason="required, at most 64 characters"))
    if not lines:
        problems.append(Problem(field="lines", reason="a delivery needs at least one line"))
    seen = set()
    for index, spec in enumerate(lines):
        where = f"lines[{index}]"
        line = by_no.get(spec.line_no)
        if line is None:
            problems.append(Problem(field=f"{where}.line_no", reason=f"{order.number} has no line {spec.line_no}"))
            continue
        if spec.line_no in seen:
            problems.append(Problem(field=f"{where}.line_no", reason=f"line {spec.line_no} is given twice"))
        seen.add(spec.line_no)
        try:
            quantity = Decimal(str(spec.quantity))
        except (InvalidOperation, ValueError, TypeError):
            problems.append(Problem(field=f"{where}.quantity", reason=f"{spec.quantity!r} is not a number"))
            continue
        if not quantity.is_finite() or quantity <= 0 or quantity != quantity.quantize(QTY):
            problems.append(
                Problem(field=f"{where}.quantity", reason="must be a positive number with at most 3 decimals")
            )
            continue
        outstanding = line.quantity_ordered - line.quantity_received
        if quantity > outstanding:
            problems.append(
                Problem(
                    field=f"{where}.quantity",
                    code="over_delivery",
                    reason=f"{quantity} is more than the {outstanding} still outstanding on line {spec.line_no}",
                )
            )
    return problems


def purchase_order_receive(
    *, order_id: int, delivery_note: str, lines: Sequence[ReceiveSpec], user=None
) -> ReceiveResult:
    """Book a delivery: post one receipt move per line through the ledger
    (key `po:<number>:<delivery note>:<line no.>`), add to the lines'
    received quantities and move the order to partly received or received.
    Booking the same delivery note again with the same lines returns the
    first result and moves nothing; with other lines it is a conflict.
    Invalid input refuses the whole delivery."""
    with transaction.atomic(durable=True):
        order = _order_locked(order_id)
        previous = GoodsReceipt.objects.filter(order=order, delivery_note=delivery_note).first()
        if previous is not None:
            booked = sorted(previous.lines.values_list("order_line__line_no", "quantity"))
            sent = sorted((spec.line_no, Decimal(str(spec.quantity)).quantize(QTY)) for spec in lines)
            if booked != sent:
                raise Conflict(
                    [
                        Problem(
                            field="delivery_note",
                            code="conflict",
                            reason=f"delivery {delivery_note!r} was booked on {order.number} with other lines",
                        )
                    ]
                )
            moves = dict(previous.lines.values_list("order_line__line_no", "stock_move_id"))
            return ReceiveResult(order=order, receipt=previous, duplicate=True, move_ids=moves)
        if order.state not in RECEIVABLE_STATES:
            raise InvalidInput(
                [
                    Problem(
                        field="state",
                        code="illegal_transition",
                        reason=f"{order.number} is {order.get_state_display().lower()}; "
                        "only a sent order receives goods",
                    )
                ]
            )
        by_no = {line.line_no: line for line in order.lines.select_for_update().order_by("pk")}
        problems = _receive_problems(order, delivery_note, lines, by_no)
        if problems:
            raise InvalidInput(problems)
        posted = stock_moves_post(
            moves=[
                MoveSpec(
                    kind=StockMove.Kind.RECEIPT,
                    idempotency_key=f"po:{order.number}:{delivery_note}:{spec.line_no}",
                    quantity=Decimal(str(spec.quantity)),
                    article_id=by_no[spec.line_no].article_id,
                    location_id=order.location_id,
                    reference=f"{order.number} {delivery_note}"[:120],
                )
                for spec in lines
            ],
            origin=StockOrigin(kind="user", code=getattr(user, "username", "") or "purchasing"),
        )
        receipt = GoodsReceipt.objects.create(
            order=order, delivery_note=delivery_note, received_by=user if getattr(user, "pk", None) else None
        )
        move_ids = {}
        for spec, move in zip(lines, posted.results, strict=True):
            line = by_no[spec.line_no]
            quantity = Decimal(str(spec.quantity))
            PurchaseOrderLine.objects.filter(pk=line.pk).update(quantity_received=F("quantity_received") + quantity)
            GoodsReceiptLine.objects.create(
                receipt=receipt, order_line=line, quantity=quantity, stock_move_id=move.move_id
            )
            move_ids[spec.line_no] = move.move_id
        complete = not order.lines.filter(quantity_received__lt=F("quantity_ordered")).exists()
        if complete:
            _transition(order, RECEIVABLE_STATES, PurchaseOrder.State.RECEIVED, received_at=timezone.now())
        elif order.state == PurchaseOrder.State.SENT:
            _transition(order, [PurchaseOrder.State.SENT], PurchaseOrder.State.PARTLY_RECEIVED)
    order.refresh_from_db()
    return ReceiveResult(order=order, receipt=receipt, move_ids=move_ids)
