"""Real-time sales from an online till: `live_sale_post` records the
receipt through `pos.services.receipts.receipt_record` (receipt, lines,
payments and the sale/return moves in one ledger batch) and, in the same
transaction, keeps the answer under the till's Idempotency-Key.

A retry with the same key and body gets the first answer and moves nothing;
the same key with another body is a conflict (409). A price that differs
from master data is accepted (the till is the truth for money) and flagged.
A sale that would break a refusing location's negative-stock policy is
refused whole, naming the line."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from pos.models import CashRegister, Receipt
from pos.services.receipts import CustomerSpec, LineSpec, PaymentSpec, receipt_problems, receipt_record
from posinv.bounds import QUANTITY_MAX, amount_within
from posinv.db import objects_insert
from posinv.exceptions import Conflict, InvalidInput, NotFound, Problem
from posinv.models import Article
from posinv.services.changes import changes_wake
from retail.models import LiveSale
from retail.services.codes import ResolvedCode, codes_resolve
from retail.services.scan import CENT, QTY, code_quantity, prices_current

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 120
# Raised by posinv_live_sale_write for whatever it leaves to the general path.
GENERAL_PATH_SQLSTATE = "PXGEN"
MAX_LINES = 500
LIVE_SALE_FIELDS = (
    "register", "idempotency_key", "request_hash", "receipt", "response", "flags", "flagged", "line_count", "total",
    "created_at", "replays",
)


@dataclass(frozen=True)
class SaleLine:
    """One line as the till sends it: a scanned `code` or a `sku`, the
    quantity scanned (negative = return), the price charged per scan and
    the line discount."""

    quantity: Decimal
    price: Decimal
    discount: Decimal = Decimal("0")
    code: str = ""
    sku: str = ""


@dataclass(frozen=True)
class SalePayment:
    method: str
    amount: Decimal


@dataclass
class SaleOutcome:
    """The answer to send: the body, and whether it is a replay of the first."""

    body: dict
    replayed: bool = False


def sale_request_hash(
    *,
    lines: Sequence[SaleLine],
    payments: Sequence[SalePayment],
    customer: CustomerSpec | None,
    receipt_no: str | None,
) -> str:
    """SHA-256 of the sale's canonical content (numbers normalized), so the
    same sale sent twice with other spacing or "1" vs "1.000" is the same."""

    def norm(value: Decimal, places: Decimal) -> str:
        return str(Decimal(value).quantize(places))

    canonical = {
        "lines": [
            {
                "code": line.code.strip(),
                "sku": line.sku.strip(),
                "quantity": norm(line.quantity, QTY),
                "price": norm(line.price, CENT),
                "discount": norm(line.discount, CENT),
            }
            for line in lines
        ],
        "payments": [{"method": p.method, "amount": norm(p.amount, CENT)} for p in payments],
        "customer": asdict(customer) if customer else None,
        "receipt_no": receipt_no or None,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def live_sale_post(
    *,
    register: CashRegister,
    idempotency_key: str,
    lines: Sequence[SaleLine],
    payments: Sequence[SalePayment] = (),
    customer: CustomerSpec | None = None,
    receipt_no: str | None = None,
    created_at: datetime | None = None,
) -> SaleOutcome:
    """Record a sale for `register` under `idempotency_key`; see the module doc.

    Raises InvalidInput (400, naming `lines[i].field`; nothing is written),
    Conflict (409: the key was used for another body, or the receipt no.
    was recorded before)."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            [
                Problem(
                    field="Idempotency-Key",
                    code="required",
                    reason=f"header required, 1 to {MAX_KEY_LENGTH} printable characters",
                )
            ]
        )
    _check_shape(lines, payments, receipt_no)
    digest = sale_request_hash(lines=lines, payments=payments, customer=customer, receipt_no=receipt_no)
    try:
        planned = _plan(register, lines)
    except InvalidInput:
        # A retry of a sale recorded before still gets its answer, even if a
        # code no longer resolves.
        replay = _replay(register, key, digest)
        if replay is None:
            raise
        return replay
    receipt_no = receipt_no or "L-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:30]
    if customer is None and connection.vendor == "postgresql" and settings.POSINV_LIVE_SALE_ONE_STATEMENT:
        outcome = _record_in_one_statement(register, key, digest, planned, payments, receipt_no, created_at)
        if outcome is not None:
            return outcome
    try:
        with transaction.atomic(durable=True):
            return _record(register, key, digest, planned, payments, customer, receipt_no, created_at)
    except (_Taken, Conflict, IntegrityError) as exc:
        # The receipt or the key exists: a retry, a concurrent twin that
        # committed first, or a clash. Everything above was rolled back; the
        # stored answer decides.
        replay = _replay(register, key, digest)
        if replay is not None:
            return replay
        if isinstance(exc, _Taken):
            raise Conflict(
                [
                    Problem(
                        field="receipt_no",
                        code="conflict",
                        reason=f"receipt {receipt_no} was recorded before (by synchronization or another key)",
                    )
                ]
            ) from None
        raise


class _Taken(Exception):
    """The receipt no. or the key was recorded before (roll back, then look)."""


def _replay(register: CashRegister, key: str, digest: str) -> SaleOutcome | None:
    """The first answer under `key` (counting the replay), None if the key is
    new; Conflict if it was used for another body."""
    first = (
        LiveSale.objects.filter(register=register, idempotency_key=key).values("pk", "request_hash", "response").first()
    )
    if first is None:
        return None
    if first["request_hash"] != digest:
        reason = f"key {key!r} was used before for a different sale"
        raise Conflict([Problem(field="Idempotency-Key", code="conflict", reason=reason)])
    LiveSale.objects.filter(pk=first["pk"]).update(replays=F("replays") + 1)
    return SaleOutcome(body=first["response"], replayed=True)


def _check_shape(lines: Sequence[SaleLine], payments: Sequence[SalePayment], receipt_no: str | None) -> None:
    problems: list[Problem] = []
    if not lines:
        problems.append(Problem(field="lines", code="required", reason="a sale needs at least one line"))
    if len(lines) > MAX_LINES:
        problems.append(Problem(field="lines", reason=f"at most {MAX_LINES} lines per sale"))
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if bool(line.code.strip()) == bool(line.sku.strip()):
            problems.append(Problem(field=f"{where}.code", reason="give either a scanned code or a sku, not both"))
        numbers = {}
        for name, places in (("quantity", QTY), ("price", CENT), ("discount", CENT)):
            value = getattr(line, name)
            try:
                number = Decimal(value)
                ok = number.is_finite() and number == number.quantize(places)
            except (InvalidOperation, TypeError, ValueError):
                ok = False
            if ok:
                numbers[name] = number
            else:
                problems.append(
                    Problem(
                        field=f"{where}.{name}",
                        reason=f"{value!r} is not a number with at most "
                        f"{abs(places.as_tuple().exponent)} decimal places",
                    )
                )
        if numbers.get("quantity") == 0:
            problems.append(Problem(field=f"{where}.quantity", reason="must not be zero"))
        if numbers.get("price", 0) < 0:
            problems.append(Problem(field=f"{where}.price", reason="must not be negative"))
    for index, payment in enumerate(payments):
        if not payment.method:
            problems.append(Problem(field=f"payments[{index}].method", code="required", reason="required"))
    if receipt_no is not None and not (0 < len(receipt_no) <= 40):
        problems.append(Problem(field="receipt_no", reason="1 to 40 characters"))
    if problems:
        raise InvalidInput(problems)


def _record(register, key, digest, planned, payments, customer, receipt_no, created_at) -> SaleOutcome:
    total = _total(planned)
    recorded = receipt_record(
        register=register,
        receipt_no=receipt_no,
        created_at=created_at or timezone.now(),
        lines=[p.spec for p in planned],
        payments=_payment_specs(payments),
        customer=customer,
        total=total,
        source=Receipt.Source.LIVE,
        post_moves=True,
        write_entries=False,
    )
    if recorded.duplicate:
        raise _Taken()
    body = _body(register, receipt_no, recorded.receipt.created_at, total, recorded.receipt.currency, planned)
    for line in body["lines"]:
        line["on_hand"] = str(recorded.balances[line["line_no"]])
    record = LiveSale(
        register=register,
        idempotency_key=key,
        request_hash=digest,
        receipt=recorded.receipt,
        response=body,
        flags=body["flags"],
        flagged=bool(body["flags"]),
        line_count=len(planned),
        total=total,
        created_at=timezone.now(),
    )
    if not objects_insert([record], LIVE_SALE_FIELDS, conflict_fields=("register", "idempotency_key"), returning="id"):
        raise _Taken()
    return SaleOutcome(body=body)


def _record_in_one_statement(register, key, digest, planned, payments, receipt_no, created_at) -> SaleOutcome | None:
    """PostgreSQL: the whole write of `_record` (receipt, lines, payments,
    moves, levels, outbox, idempotency record) as one call of
    `posinv_live_sale_write` (retail/migrations/0002), its own transaction.
    A retry gets its stored answer. None when the general path must decide
    (a refusal, a receipt no. taken another way, a move key posted before, a
    key used meanwhile): the statement then wrote nothing."""
    specs = [p.spec for p in planned]
    payment_specs = _payment_specs(payments)
    if receipt_problems(receipt_no, specs, payment_specs) or any(
        abs(spec.quantity) > QUANTITY_MAX for spec in specs
    ):
        return None  # the general path raises them
    total = _total(planned)
    if not amount_within(total):
        return None  # the general path refuses it (posinv/bounds.py)
    created_at = created_at or timezone.now()
    body = _body(register, receipt_no, created_at, total, register.currency, planned)
    payload = {
        "register_id": register.pk,
        "register_code": register.code,
        "location_id": register.location_id,
        "receipt_no": receipt_no,
        "total": str(total),
        "currency": register.currency,
        "created_at": created_at.isoformat(),
        "recorded_at": timezone.now().isoformat(),
        "key": key,
        "request_hash": digest,
        # The ledger's level bound: a sale beyond it takes the general path (retail/migrations/0003).
        "quantity_max": str(QUANTITY_MAX),
        "lines": [
            {
                "line_no": spec.line_no,
                "article_id": spec.article_id,
                "sku": spec.sku,
                "barcode": spec.barcode,
                "quantity": str(spec.quantity.quantize(QTY)),
                "unit_price": str(spec.unit_price.quantize(CENT)),
                "discount": str(spec.discount.quantize(CENT)),
            }
            for spec in specs
        ],
        "payments": [
            {"line_no": p.line_no, "method": p.method, "amount": str(Decimal(p.amount).quantize(CENT))}
            for p in payment_specs
        ],
        "response": body,
        "flags": body["flags"],
    }
    try:
        # Inside a caller's transaction (tests) a savepoint keeps a failed
        # statement from spoiling it; otherwise the statement is its own transaction.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            with connection.cursor() as cursor:
                cursor.execute("SELECT posinv_live_sale_write(%s::jsonb)", [json.dumps(payload)])
                (answer,) = cursor.fetchone()
    except DatabaseError as exc:
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
        log = logger.info if sqlstate in (GENERAL_PATH_SQLSTATE, "40P01", "23505") else logger.warning
        log("live sale %s on %s takes the general path: %s", key, register.code, str(exc).strip())
        return None
    answer = json.loads(answer) if isinstance(answer, str) else answer
    if "general" in answer:
        return _replay(register, key, digest)
    for line, on_hand in zip(body["lines"], answer["balances"], strict=True):
        line["on_hand"] = on_hand
    if answer["changed"]:
        transaction.on_commit(changes_wake, robust=True)
    return SaleOutcome(body=body)


def _total(planned: Sequence[_Planned]) -> Decimal:
    return sum(
        (Decimal(p.line.quantity) * Decimal(p.line.price) - Decimal(p.line.discount) for p in planned), Decimal("0")
    ).quantize(CENT, rounding=ROUND_HALF_UP)


def _payment_specs(payments: Sequence[SalePayment]) -> list[PaymentSpec]:
    return [PaymentSpec(line_no=i, method=p.method, amount=p.amount) for i, p in enumerate(payments, 1)]


def _body(register, receipt_no: str, created_at: datetime, total: Decimal, currency: str, planned) -> dict:
    """The answer without each line's `on_hand`, which the write fills in."""
    return {
        "receipt_no": receipt_no,
        "register": register.code,
        "location": register.location.code,
        "created_at": created_at.isoformat(),
        "total": str(total),
        "currency": currency,
        "lines": [
            {
                "line_no": p.spec.line_no,
                "sku": p.spec.sku,
                "code": p.spec.barcode or None,
                "quantity": str(p.spec.quantity.quantize(QTY)),
                "price": str(Decimal(p.line.price).quantize(CENT)),
                "on_hand": None,
            }
            for p in planned
        ],
        "flags": [flag for p in planned for flag in p.flags],
    }


@dataclass
class _Planned:
    line: SaleLine
    spec: LineSpec
    flags: list[dict]


def _plan(register: CashRegister, lines: Sequence[SaleLine]) -> list[_Planned]:
    """Resolve every line to an article and stock quantity (one query for
    codes with their prices; for SKU lines one for articles and one for
    prices) and flag price disagreements."""
    code_indexes = [i for i, line in enumerate(lines) if line.code.strip()]
    resolved: dict[int, ResolvedCode] = {}
    if code_indexes:
        try:
            found = codes_resolve(
                codes=[lines[i].code for i in code_indexes],
                fields=[f"lines[{i}].code" for i in code_indexes],
                price_group_id=register.price_group_id,
            )
        except NotFound as exc:
            # In a sale an unknown code is bad input of that line, not a missing resource.
            raise InvalidInput(exc.problems) from exc
        resolved = dict(zip(code_indexes, found, strict=True))
    skus = {line.sku.strip() for line in lines if line.sku.strip()}
    # Codes already carry their article's SKU; only SKU lines need a lookup.
    by_sku = {r.sku: r.article_id for r in resolved.values()}
    if skus:
        by_sku.update(Article.objects.filter(sku__in=skus).values_list("sku", "pk"))
    sku_of = {article_id: sku for sku, article_id in by_sku.items()}
    problems = [
        Problem(field=f"lines[{i}].sku", code="not_found", reason=f"no article with sku {line.sku.strip()!r}")
        for i, line in enumerate(lines)
        if line.sku.strip() and line.sku.strip() not in by_sku
    ]
    if problems:
        raise InvalidInput(problems)
    article_of = {
        i: resolved[i].article_id if i in resolved else by_sku[line.sku.strip()] for i, line in enumerate(lines)
    }
    # Codes carry their price already; only articles sold by SKU need the price query.
    prices = {r.article_id: r.unit_price for r in resolved.values() if r.unit_price is not None}
    by_sku_only = {article_of[i] for i, line in enumerate(lines) if i not in resolved} - prices.keys()
    if by_sku_only:
        prices.update(prices_current(article_ids=by_sku_only, group_id=register.price_group_id))

    planned = []
    for index, line in enumerate(lines):
        article_id = article_of[index]
        unit_price = prices.get(article_id)
        code = resolved.get(index)
        factor = code_quantity(resolved=code, unit_price=unit_price) if code else Decimal(1)
        quantity = (Decimal(line.quantity) * factor).quantize(QTY, rounding=ROUND_HALF_UP)
        if quantity == 0:
            raise InvalidInput([Problem(field=f"lines[{index}].quantity", reason="stands for less than 0.001 units")])
        if code is not None and code.label_amount is not None:
            expected = code.label_amount.quantize(CENT)
        elif unit_price is not None:
            expected = (unit_price * factor).quantize(CENT, rounding=ROUND_HALF_UP)
        else:
            expected = None
        price = Decimal(line.price).quantize(CENT)
        flags = []
        if expected is None:
            flags.append(
                {
                    "line_no": index + 1,
                    "field": f"lines[{index}].price",
                    "code": "no_master_price",
                    "sent": str(price),
                    "expected": None,
                    "reason": "no price valid today in the register's price group",
                }
            )
        elif price != expected:
            flags.append(
                {
                    "line_no": index + 1,
                    "field": f"lines[{index}].price",
                    "code": "price_mismatch",
                    "sent": str(price),
                    "expected": str(expected),
                    "reason": f"the till charged {price}, master data says {expected}",
                }
            )
        planned.append(
            _Planned(
                line=line,
                spec=LineSpec(
                    line_no=index + 1,
                    sku=sku_of[article_id],
                    quantity=quantity,
                    unit_price=(price / factor).quantize(CENT, rounding=ROUND_HALF_UP),
                    discount=Decimal(line.discount).quantize(CENT),
                    barcode=code.code[:14] if code else "",
                    article_id=article_id,
                ),
                flags=flags,
            )
        )
    return planned


def live_sales_prune(*, older_than_days: int, batch_size: int = 5000) -> int:
    """Delete idempotency records older than `older_than_days` days, in
    batches (the receipts stay). A till retrying a key that old gets a 409
    (its receipt exists) instead of the first answer. Returns how many went."""
    if older_than_days < 1:
        raise InvalidInput([Problem(field="older_than_days", reason="must be at least 1")])
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted = 0
    while True:
        ids = list(
            LiveSale.objects.filter(created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += LiveSale.objects.filter(pk__in=ids).delete()[0]
