"""Transfer orders between locations: draft -> shipped (stock leaves the
source) -> partially received / received (stock arrives at the
destination). Each step is one ledger batch with keys per order, step and
line, so a repeated step moves nothing twice; status changes are single
conditional UPDATEs that refuse an illegal transition."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from posinv.exceptions import Conflict, InvalidInput, NotFound, Problem
from posinv.models import Article, Location, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from retail.models import TransferLine, TransferOrder, TransferReceipt

QTY = Decimal("0.001")


@dataclass(frozen=True)
class TransferLineSpec:
    """One article to transfer, by SKU, and how much."""

    sku: str
    quantity: Decimal


def _quantity(value, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput([Problem(field=field, reason=f"{value!r} is not a number")]) from None
    if not number.is_finite() or number <= 0:
        raise InvalidInput([Problem(field=field, reason="must be a positive number")])
    if number != number.quantize(QTY):
        raise InvalidInput([Problem(field=field, reason="at most 3 decimal places")])
    return number


def transfer_create(
    *, source_code: str, destination_code: str, lines: Sequence[TransferLineSpec], note: str = "", created_by: str = ""
) -> TransferOrder:
    """A draft transfer order; its quantities count as promised at the
    source (less available there) until it ships."""
    problems: list[Problem] = []
    locations = {loc.code: loc for loc in Location.objects.filter(code__in={source_code, destination_code})}
    for field, code in (("source", source_code), ("destination", destination_code)):
        if code not in locations:
            problems.append(Problem(field=field, code="not_found", reason=f"unknown location {code!r}"))
    if source_code == destination_code:
        problems.append(Problem(field="destination", reason="source and destination are the same location"))
    if not lines:
        problems.append(Problem(field="lines", code="required", reason="a transfer needs at least one line"))
    articles = dict(Article.objects.filter(sku__in={line.sku for line in lines}).values_list("sku", "pk"))
    quantities: list[Decimal] = []
    for index, line in enumerate(lines):
        if line.sku not in articles:
            problems.append(
                Problem(field=f"lines[{index}].sku", code="not_found", reason=f"no article with sku {line.sku!r}")
            )
        try:
            quantities.append(_quantity(line.quantity, f"lines[{index}].quantity"))
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput(problems)
    with transaction.atomic():
        order = TransferOrder.objects.create(
            number=f"tmp-{uuid.uuid4().hex[:16]}",
            source=locations[source_code],
            destination=locations[destination_code],
            note=note[:200],
            created_by=created_by[:150],
        )
        transfer_number_assign(order=order)
        TransferLine.objects.bulk_create(
            [
                TransferLine(order=order, line_no=i, article_id=articles[line.sku], quantity=qty)
                for i, (line, qty) in enumerate(zip(lines, quantities, strict=True), start=1)
            ]
        )
    return order


def transfer_number_assign(*, order: TransferOrder) -> str:
    """Give a newly saved order its number from its row id (TO-000042), so two
    creators never collide; an order saved with a number keeps it."""
    if order.number and not order.number.startswith("tmp-"):
        return order.number
    order.number = f"TO-{order.pk:06d}"
    TransferOrder.objects.filter(pk=order.pk).update(number=order.number)
    return order.number


def _locked(number: str) -> TransferOrder:
    try:
        return TransferOrder.objects.select_for_update().get(number=number)
    except TransferOrder.DoesNotExist:
        raise NotFound([Problem(field="number", code="not_found", reason=f"no transfer order {number!r}")]) from None


def _illegal(order: TransferOrder, action: str) -> Conflict:
    return Conflict(
        [
            Problem(
                field="status", code="illegal_transition", reason=f"{order.number} is {order.status}; cannot {action}"
            )
        ]
    )


def transfer_ship(*, number: str, user: str = "") -> TransferOrder:
    """Ship a draft: one ledger batch takes every line's quantity out of the
    source (refused whole when the source refuses negative stock)."""
    with transaction.atomic(durable=True):
        order = _locked(number)
        if order.status != TransferOrder.Status.DRAFT:
            raise _illegal(order, "ship")
        lines = list(order.lines.select_related("article").order_by("line_no"))
        if not lines:
            raise InvalidInput([Problem(field="lines", code="required", reason=f"{order.number} has no lines to ship")])
        moves = [
            MoveSpec(
                kind=StockMove.Kind.TRANSFER,
                idempotency_key=f"transfer:{order.number}:ship:{line.line_no}",
                quantity=-line.quantity,
                article_id=line.article_id,
                location_id=order.source_id,
                reference=f"{order.number} to {order.destination.code}",
            )
            for line in lines
        ]
        stock_moves_post(moves=moves, origin=StockOrigin(kind="user", code=user))
        updated = TransferOrder.objects.filter(pk=order.pk, status=TransferOrder.Status.DRAFT).update(
            status=TransferOrder.Status.SHIPPED, shipped_at=timezone.now()
        )
        if updated != 1:
            raise _illegal(order, "ship")
        order.refresh_from_db()
        return order


def transfer_receive(
    *, number: str, quantities: Mapping[int, Decimal] | None = None, key: str = "", user: str = ""
) -> TransferReceipt:
    """Book an arrival of a shipped order: `quantities` per line no. (None:
    everything outstanding). One ledger batch adds them at the destination.
    Receiving more than is outstanding on a line is refused whole. A receipt
    sent again with the same `key` returns the first one and moves nothing."""
    with transaction.atomic(durable=True):
        order = _locked(number)
        if key:
            earlier = TransferReceipt.objects.filter(order=order, key=key).first()
            if earlier is not None:
                return earlier
        if order.status not in (TransferOrder.Status.SHIPPED, TransferOrder.Status.PARTIAL):
            raise _illegal(order, "receive")
        lines = {line.line_no: line for line in order.lines.all()}
        if quantities is None:
            wanted = {no: line.outstanding for no, line in lines.items() if line.outstanding > 0}
        else:
            problems: list[Problem] = []
            wanted = {}
            for line_no, raw in quantities.items():
                field = f"lines[{line_no}].quantity"
                line = lines.get(int(line_no))
                if line is None:
                    problems.append(
                        Problem(
                            field=f"lines[{line_no}]", code="not_found", reason=f"{order.number} has no line {line_no}"
                        )
                    )
                    continue
                try:
                    qty = _quantity(raw, field)
                except InvalidInput as exc:
                    problems += exc.problems
                    continue
                if qty > line.outstanding:
                    problems.append(
                        Problem(
                            field=field,
                            code="over_receipt",
                            reason=f"receiving {qty.quantize(QTY)} but only {line.outstanding.quantize(QTY)} "
                            f"of line {line_no} is outstanding",
                        )
                    )
                wanted[line.line_no] = qty
            if not wanted and not problems:
                problems.append(Problem(field="lines", code="required", reason="nothing to receive"))
            if problems:
                raise InvalidInput(problems)
        if not wanted:
            raise InvalidInput([Problem(field="lines", code="required", reason="nothing outstanding to receive")])
        seq = (order.receipts.aggregate(top=Max("seq"))["top"] or 0) + 1
        stock_moves_post(
            moves=[
                MoveSpec(
                    kind=StockMove.Kind.TRANSFER,
                    idempotency_key=f"transfer:{order.number}:receipt:{seq}:{line_no}",
                    quantity=qty,
                    article_id=lines[line_no].article_id,
                    location_id=order.destination_id,
                    reference=f"{order.number} from {order.source.code}",
                )
                for line_no, qty in sorted(wanted.items())
            ],
            origin=StockOrigin(kind="user", code=user),
        )
        for line_no, qty in wanted.items():
            TransferLine.objects.filter(pk=lines[line_no].pk).update(received_qty=F("received_qty") + qty)
            lines[line_no].received_qty += qty
        complete = all(line.outstanding <= 0 for line in lines.values())
        new_status = TransferOrder.Status.RECEIVED if complete else TransferOrder.Status.PARTIAL
        updated = TransferOrder.objects.filter(
            pk=order.pk, status__in=[TransferOrder.Status.SHIPPED, TransferOrder.Status.PARTIAL]
        ).update(status=new_status, received_at=timezone.now() if complete else None)
        if updated != 1:
            raise _illegal(order, "receive")
        return TransferReceipt.objects.create(
            order=order,
            seq=seq,
            key=key or f"seq-{seq}",
            quantities={str(no): str(qty) for no, qty in sorted(wanted.items())},
            received_by=user[:150],
        )


def transfer_cancel(*, number: str) -> TransferOrder:
    """Cancel a draft (nothing moved yet, so nothing to undo)."""
    with transaction.atomic(durable=True):
        order = _locked(number)
        updated = TransferOrder.objects.filter(pk=order.pk, status=TransferOrder.Status.DRAFT).update(
            status=TransferOrder.Status.CANCELLED
        )
        if updated != 1:
            raise _illegal(order, "cancel")
        order.refresh_from_db()
        return order
