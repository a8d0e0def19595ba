"""Recording sales: a receipt with its lines and payments, its stock moves
through the ledger, and (on a register node) its outbox entries, all in one
transaction. Used by the till API and command on a register node and by the
live point-of-sale API on the main system."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pos.models import CashRegister, Customer, PaymentLine, PosProcess, Receipt, ReceiptLine, StockCount
from pos.services import records
from pos.services.entries import entries_write
from posinv.bounds import amount_problem, quantity_problem
from posinv.db import objects_insert
from posinv.exceptions import Conflict, InvalidInput, LedgerRefused, Problem
from posinv.models import Article, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

MAX_LINES = 1000
# Columns written by hand (posinv/db.py): a till waits for this insert.
RECEIPT_FIELDS = (
    "register", "receipt_no", "process", "customer", "total", "currency", "created_at", "source", "recorded_at"
)
LINE_FIELDS = ("receipt", "line_no", "article", "sku", "barcode", "quantity", "unit_price", "discount", "stock_move")
PAYMENT_FIELDS = ("receipt", "line_no", "method", "amount")


@dataclass(frozen=True)
class LineSpec:
    """One receipt line as the till sends it; negative quantity = return."""

    line_no: int
    sku: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal = Decimal("0")
    barcode: str = ""
    # Known by callers that resolved the line already (the live sale): saves a lookup by SKU.
    article_id: int | None = None


@dataclass(frozen=True)
class PaymentSpec:
    line_no: int
    method: str
    amount: Decimal


@dataclass(frozen=True)
class CustomerSpec:
    customer_no: str
    name: str = ""
    email: str = ""
    card_no: str = ""


@dataclass
class ReceiptRecorded:
    """The outcome: the receipt, whether it existed already (a replay), the
    ids of its stock moves and the on-hand each left (by line no.), and the
    entry nos. written."""

    receipt: Receipt
    duplicate: bool = False
    move_ids: dict[int, int | None] = field(default_factory=dict)
    entry_nos: list[int] = field(default_factory=list)
    balances: dict[int, Decimal | None] = field(default_factory=dict)


def line_move_key(*, register_code: str, receipt_no: str, line_no: int) -> str:
    """The ledger idempotency key of a receipt line: the same sale arriving
    by sync, by re-export or by the live API moves stock once."""
    return f"pos:{register_code}:{receipt_no}:{line_no}"


def line_move_spec(
    *, register: CashRegister, receipt_no: str, line_no: int, sku: str, quantity: Decimal, article_id: int | None = None
) -> MoveSpec:
    """A sale (positive line quantity takes stock) or a return (negative adds it)."""
    kind = StockMove.Kind.SALE if quantity > 0 else StockMove.Kind.RETURN
    return MoveSpec(
        kind=kind,
        idempotency_key=line_move_key(register_code=register.code, receipt_no=receipt_no, line_no=line_no),
        quantity=-quantity,
        sku=None if article_id else sku,
        article_id=article_id,
        location_id=register.location_id,
        reference=f"receipt {receipt_no}",
    )


def _is_node() -> bool:
    return settings.POSINV_NODE == "register"


def _number(value, *, field_name: str, places: Decimal) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidInput([Problem(field=field_name, reason=f"{value!r} is not a number")]) from exc
    if not number.is_finite():
        raise InvalidInput([Problem(field=field_name, reason="must be a finite number")])
    if number != number.quantize(places):
        digits = abs(places.as_tuple().exponent)
        raise InvalidInput([Problem(field=field_name, reason=f"at most {digits} decimal places")])
    beyond = quantity_problem(number) if places == records.QTY else amount_problem(number)
    if beyond:
        raise InvalidInput([Problem(field=field_name, code="out_of_bounds", reason=beyond)])
    return number.quantize(places)


def receipt_problems(receipt_no: str, lines: Sequence[LineSpec], payments: Sequence[PaymentSpec]) -> list[Problem]:
    """What is wrong with a receipt before anything is written (empty: nothing)."""
    problems = []
    if not receipt_no or len(receipt_no) > 40:
        problems.append(Problem(field="receipt_no", reason="required, at most 40 characters"))
    if not lines:
        problems.append(Problem(field="lines", reason="a receipt needs at least one line"))
    if len(lines) > MAX_LINES:
        problems.append(Problem(field="lines", reason=f"at most {MAX_LINES} lines per receipt"))
    seen: set[int] = set()
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if line.line_no in seen:
            problems.append(Problem(field=f"{where}.line_no", reason=f"line no. {line.line_no} is used twice"))
        seen.add(line.line_no)
        if not line.sku:
            problems.append(Problem(field=f"{where}.sku", reason="required"))
        try:
            quantity = _number(line.quantity, field_name=f"{where}.quantity", places=records.QTY)
            if quantity == 0:
                problems.append(Problem(field=f"{where}.quantity", reason="must not be zero"))
            _number(line.unit_price, field_name=f"{where}.unit_price", places=records.CENT)
            _number(line.discount, field_name=f"{where}.discount", places=records.CENT)
        except InvalidInput as exc:
            problems += exc.problems
    paid: set[int] = set()
    for index, payment in enumerate(payments):
        if payment.line_no in paid:
            problems.append(
                Problem(field=f"payments[{index}].line_no", reason=f"line no. {payment.line_no} is used twice")
            )
        paid.add(payment.line_no)
        if not payment.method:
            problems.append(Problem(field=f"payments[{index}].method", reason="required"))
        try:
            _number(payment.amount, field_name=f"payments[{index}].amount", places=records.CENT)
        except InvalidInput as exc:
            problems += exc.problems
    return problems


def customer_upsert(*, spec: CustomerSpec) -> tuple[Customer, bool]:
    """Create or update a customer by customer no.; returns (customer, changed)."""
    values = {"name": spec.name, "email": spec.email, "card_no": spec.card_no}
    customer, created = Customer.objects.get_or_create(customer_no=spec.customer_no, defaults=values)
    if created:
        return customer, True
    if any(getattr(customer, key) != value for key, value in values.items()):
        Customer.objects.filter(pk=customer.pk).update(**values)
        for key, value in values.items():
            setattr(customer, key, value)
        return customer, True
    return customer, False


def pos_process_open(
    *, register: CashRegister, process_no: str, opened_at: datetime, cashier: str = ""
) -> PosProcess:
    """Open a till session (idempotent by process no.); on a node, write its entry."""
    with transaction.atomic():
        process, created = PosProcess.objects.get_or_create(
            register=register, process_no=process_no, defaults={"opened_at": opened_at, "cashier": cashier}
        )
        if created and _is_node():
            entries_write(register_id=register.pk, rows=[records.process_record(process, register.code)])
        return process


def pos_process_close(*, register: CashRegister, process_no: str, closed_at: datetime) -> PosProcess:
    """Close a till session; on a node, write its entry again with the closing time."""
    with transaction.atomic():
        try:
            process = PosProcess.objects.select_for_update().get(register=register, process_no=process_no)
        except PosProcess.DoesNotExist as exc:
            raise InvalidInput([Problem(field="process_no", reason=f"unknown POS process {process_no!r}")]) from exc
        if process.status == PosProcess.Status.CLOSED:
            return process
        PosProcess.objects.filter(pk=process.pk, status=PosProcess.Status.OPEN).update(
            status=PosProcess.Status.CLOSED, closed_at=closed_at
        )
        process.refresh_from_db()
        if _is_node():
            entries_write(register_id=register.pk, rows=[records.process_record(process, register.code)])
        return process


def receipt_record(
    *,
    register: CashRegister,
    receipt_no: str,
    created_at: datetime,
    lines: Sequence[LineSpec],
    payments: Sequence[PaymentSpec] = (),
    customer: CustomerSpec | None = None,
    process_no: str | None = None,
    cashier: str = "",
    total: Decimal | None = None,
    currency: str | None = None,
    source: str | None = None,
    post_moves: bool | None = None,
    write_entries: bool | None = None,
) -> ReceiptRecorded:
    """Record one receipt with its lines and payments in one transaction.

    `post_moves` (default: on the main system) posts one sale/return move
    per line through the ledger, keyed by register, receipt and line; an
    unknown SKU then refuses the whole receipt (InvalidInput naming the
    line). A register node keeps no article master, so by default it stores
    the lines as sent and writes `write_entries` (default: on a node) one
    outbox entry per enabled table row instead. Recording the same receipt
    no. again with the same content returns the first result
    (`duplicate=True`); with different content it raises Conflict (409).
    Composes with a caller's transaction."""
    node = _is_node()
    post_moves = (not node) if post_moves is None else post_moves
    write_entries = node if write_entries is None else write_entries
    source = source or (Receipt.Source.REGISTER if node else Receipt.Source.LIVE)
    problems = receipt_problems(receipt_no, lines, payments)
    if problems:
        raise InvalidInput(problems)
    lines = sorted(lines, key=lambda line: line.line_no)
    payments = sorted(payments, key=lambda payment: payment.line_no)
    if total is None:
        total = sum(
            (
                (Decimal(str(line.quantity)) * Decimal(str(line.unit_price)) - Decimal(str(line.discount)))
                for line in lines
            ),
            Decimal("0"),
        ).quantize(records.CENT)
    else:
        total = _number(total, field_name="total", places=records.CENT)
    beyond = amount_problem(total)
    if beyond:
        reason = f"the receipt's total {total} {beyond}"
        raise InvalidInput([Problem(field="total", code="out_of_bounds", reason=reason)])
    currency = currency or register.currency

    with transaction.atomic():
        if customer is not None or process_no:
            # A receipt sent again must not touch its customer or process:
            # look for it before writing those.
            existing = Receipt.objects.filter(register=register, receipt_no=receipt_no).first()
            if existing is not None:
                return _replay(existing, register, lines, payments, total)
        customer_row = None
        rows: list[tuple[str, str, dict]] = []
        if customer is not None:
            customer_row, changed = customer_upsert(spec=customer)
            if changed:
                rows.append(records.customer_record(customer_row))
        process = None
        if process_no:
            process = PosProcess.objects.filter(register=register, process_no=process_no).first()
            if process is None:
                process = pos_process_open(
                    register=register, process_no=process_no, opened_at=created_at, cashier=cashier
                )
        receipt = Receipt(
            register=register,
            receipt_no=receipt_no,
            process=process,
            customer=customer_row,
            total=total,
            currency=currency,
            created_at=created_at,
            source=source,
            recorded_at=timezone.now(),
        )
        # Insert first, skipping a clash on (register, receipt no.): a receipt
        # sent again finds itself without a lookup on the usual path.
        inserted = objects_insert(
            [receipt], RECEIPT_FIELDS, conflict_fields=("register", "receipt_no"), returning="id"
        )
        if not inserted:
            existing = Receipt.objects.get(register=register, receipt_no=receipt_no)
            return _replay(existing, register, lines, payments, total)
        receipt.pk = inserted[0]
        line_rows = [
            ReceiptLine(
                receipt=receipt,
                line_no=line.line_no,
                sku=line.sku,
                barcode=line.barcode,
                quantity=Decimal(str(line.quantity)).quantize(records.QTY),
                unit_price=Decimal(str(line.unit_price)).quantize(records.CENT),
                discount=Decimal(str(line.discount)).quantize(records.CENT),
                article_id=line.article_id,
            )
            for line in lines
        ]
        unresolved = {row.sku for row in line_rows if row.article_id is None}
        if unresolved:
            known = dict(Article.objects.filter(sku__in=unresolved).values_list("sku", "pk"))
            for row in line_rows:
                if row.article_id is None:
                    row.article_id = known.get(row.sku)
        move_ids: dict[int, int | None] = {}
        balances: dict[int, Decimal | None] = {}
        if post_moves:
            move_ids, balances = _post_moves(register, receipt_no, line_rows)
            for row in line_rows:
                row.stock_move_id = move_ids.get(row.line_no)
        objects_insert(line_rows, LINE_FIELDS)
        payment_rows = [
            PaymentLine(
                receipt=receipt,
                line_no=payment.line_no,
                method=payment.method,
                amount=Decimal(str(payment.amount)).quantize(records.CENT),
            )
            for payment in payments
        ]
        objects_insert(payment_rows, PAYMENT_FIELDS)
        entry_nos: list[int] = []
        if write_entries:
            rows.append(
                records.receipt_record_of(
                    receipt,
                    process_no=process.process_no if process else None,
                    customer_no=customer_row.customer_no if customer_row else None,
                )
            )
            rows += [records.line_record(row, receipt_no) for row in line_rows]
            rows += [records.payment_record(row, receipt_no) for row in payment_rows]
            entry_nos = [entry.entry_no for entry in entries_write(register_id=register.pk, rows=rows)]
        return ReceiptRecorded(receipt=receipt, move_ids=move_ids, entry_nos=entry_nos, balances=balances)


def _post_moves(
    register: CashRegister, receipt_no: str, line_rows: list[ReceiptLine]
) -> tuple[dict[int, int | None], dict[int, Decimal | None]]:
    specs = [
        line_move_spec(
            register=register,
            receipt_no=receipt_no,
            line_no=row.line_no,
            sku=row.sku,
            quantity=row.quantity,
            article_id=row.article_id,
        )
        for row in line_rows
    ]
    try:
        result = stock_moves_post(moves=specs, origin=StockOrigin(kind="register", code=register.code))
    except LedgerRefused as exc:
        # Name the receipt line, not the ledger's move index.
        raise InvalidInput(
            [
                Problem(
                    field=f"lines[{p.index}].{p.field or 'sku'}" if p.index is not None else p.field,
                    reason=p.reason,
                    code=p.code,
                )
                for p in exc.problems
            ]
        ) from exc
    return (
        {row.line_no: result.results[index].move_id for index, row in enumerate(line_rows)},
        {row.line_no: result.results[index].balance_after for index, row in enumerate(line_rows)},
    )


def _replay(existing: Receipt, register: CashRegister, lines, payments, total: Decimal) -> ReceiptRecorded:
    stored = list(
        existing.lines.order_by("line_no").values_list("line_no", "sku", "quantity", "unit_price", "discount")
    )
    sent = [
        (
            line.line_no,
            line.sku,
            Decimal(str(line.quantity)).quantize(records.QTY),
            Decimal(str(line.unit_price)).quantize(records.CENT),
            Decimal(str(line.discount)).quantize(records.CENT),
        )
        for line in lines
    ]
    if stored != sent or existing.total != total:
        raise Conflict(
            [
                Problem(
                    field="receipt_no",
                    code="conflict",
                    reason=f"receipt {existing.receipt_no} was recorded before with different content",
                )
            ]
        )
    move_ids = dict(existing.lines.values_list("line_no", "stock_move_id"))
    return ReceiptRecorded(receipt=existing, duplicate=True, move_ids=move_ids)


def stock_count_record(*, register: CashRegister, sku: str, counted_qty: Decimal, counted_at: datetime) -> StockCount:
    """Record a count at the register's location (idempotent by SKU and time);
    on a node, write its entry. The main system posts it when applying."""
    counted_qty = _number(counted_qty, field_name="counted_qty", places=records.QTY)
    if counted_qty < 0:
        raise InvalidInput([Problem(field="counted_qty", reason="a counted quantity cannot be negative")])
    with transaction.atomic():
        count, created = StockCount.objects.get_or_create(
            register=register, sku=sku, counted_at=counted_at, defaults={"counted_qty": counted_qty}
        )
        if created and _is_node():
            entries_write(register_id=register.pk, rows=[records.stock_count_record(count)])
        return count
