"""Validation of incoming entries against the record shapes of the register
contract, in two layers.

The envelope (`batch_problems`: a list of objects, each with a unique entry
no., a table name, a record id and a record that is an object) is checked
whole before anything is kept: a malformed envelope is a 400 naming
`entries[i].field` and nothing of it is applied, because without it the
main system cannot even say which entry is wrong.

A record's table (`table_problem`: one this main system knows) and fields
(`record_problems`: required fields, types, sizes, limits) are checked per
entry when it is applied: a record the main system refuses
is kept as a failed entry with its reason (`record.total: too large`) and
does not stop the register's other entries (docs/registers.md)."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from pos.models import SyncTable
from posinv.api.parsers import unstorable_text_problem
from posinv.bounds import amount_problem, decimal_text_problem, quantity_problem, time_problem
from posinv.exceptions import Problem

# name: (kind, required). Kinds: str, int, qty, money, time, opt_str, opt_time.
SHAPES: dict[str, dict[str, tuple[str, bool]]] = {
    SyncTable.POS_PROCESS: {
        "process_no": ("str", True),
        "register": ("str", False),
        "opened_at": ("time", True),
        "closed_at": ("opt_time", False),
        "cashier": ("str", False),
        "status": ("status", False),
    },
    SyncTable.RECEIPT: {
        "receipt_no": ("str", True),
        "process_no": ("opt_str", False),
        "created_at": ("time", True),
        "customer_no": ("opt_str", False),
        "total": ("money", True),
        "currency": ("currency", False),
    },
    SyncTable.RECEIPT_LINE: {
        "receipt_no": ("str", True),
        "line_no": ("int", True),
        "sku": ("str", True),
        "barcode": ("str", False),
        "quantity": ("qty_nonzero", True),
        "unit_price": ("money", True),
        "discount": ("money", False),
    },
    SyncTable.PAYMENT_LINE: {
        "receipt_no": ("str", True),
        "line_no": ("int", True),
        "method": ("str", True),
        "amount": ("money", True),
    },
    SyncTable.CUSTOMER: {
        "customer_no": ("str", True),
        "name": ("str", False),
        "email": ("str", False),
        "card_no": ("str", False),
    },
    SyncTable.STOCK_COUNT: {
        "sku": ("str", True),
        "counted_qty": ("qty_nonnegative", True),
        "counted_at": ("time", True),
    },
}
MAX_LENGTHS = {"process_no": 40, "receipt_no": 40, "sku": 64, "barcode": 14, "customer_no": 32, "method": 32,
               "cashier": 80, "name": 200, "email": 254, "card_no": 64, "register": 32}


def _decimal(value, places: int) -> Decimal | str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "must be a decimal string such as \"1.50\""
    problem = decimal_text_problem(str(value))
    if problem:
        return problem
    number = Decimal(str(value))
    beyond = quantity_problem(number) if places == 3 else amount_problem(number)
    if beyond:
        return beyond  # before quantize, which cannot round a figure of dozens of digits
    if number != number.quantize(Decimal(1).scaleb(-places)):
        return f"at most {places} decimal places"
    return number


def _time(value) -> datetime | str:
    if not isinstance(value, str):
        return "must be an ISO 8601 time with zone"
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        return f"{value!r} is not an ISO 8601 time"
    if parsed.tzinfo is None:
        return "needs a time zone (e.g. +00:00)"
    problem = time_problem(parsed)
    if problem:
        return problem
    # Python takes zone offsets up to 24 hours, PostgreSQL only up to 16: store UTC.
    return parsed.astimezone(UTC)


def _check(kind: str, name: str, value) -> str | None:
    if kind in {"str", "opt_str", "currency", "status"}:
        if value is None and kind == "opt_str":
            return None
        if not isinstance(value, str):
            return "must be a string"
        if kind == "currency" and (len(value) != 3 or not value.isalpha()):
            return "must be a 3-letter currency code"
        if kind == "status" and value not in {"open", "closed"}:
            return "must be 'open' or 'closed'"
        if len(value) > MAX_LENGTHS.get(name, 200):
            return f"at most {MAX_LENGTHS.get(name, 200)} characters"
        return None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 2**31 - 1:
            return "must be a positive whole number"
        return None
    if kind in {"time", "opt_time"}:
        if value is None and kind == "opt_time":
            return None
        parsed = _time(value)
        return parsed if isinstance(parsed, str) else None
    places = 3 if kind.startswith("qty") else 2
    number = _decimal(value, places)
    if isinstance(number, str):
        return number
    if kind == "qty_nonzero" and number == 0:
        return "must not be zero"
    if kind == "qty_nonnegative" and number < 0:
        return "a counted quantity cannot be negative"
    return None


def table_problem(table: str) -> Problem | None:
    if table in SHAPES:
        return None
    return Problem(field="table", reason=f"unknown table {table!r}: must be one of {', '.join(SHAPES)}")


def record_problems(table: str, record, *, where: str) -> list[Problem]:
    """What is wrong with one record of `table` (an empty list if nothing)."""
    if not isinstance(record, dict):
        return [Problem(field=f"{where}", reason="must be an object")]
    shape = SHAPES[table]
    problems = []
    for name, (kind, required) in shape.items():
        if name not in record or (record[name] in ("", None) and required):
            if required:
                problems.append(Problem(field=f"{where}.{name}", reason="required", code="required"))
            continue
        reason = _check(kind, name, record[name])
        if reason:
            problems.append(Problem(field=f"{where}.{name}", reason=reason))
    unknown = sorted(set(record) - set(shape))
    if unknown:
        problems.append(Problem(field=f"{where}.{unknown[0]}", reason=f"unknown field for table {table}"))
    return problems


# Entry numbers are stored as bigint.
ENTRY_NO_MAX = 2**63 - 1


def batch_problems(entries) -> list[Problem]:
    """Every problem of a pushed or pulled batch's envelope, each naming its
    entry (the records' fields are checked per entry: `record_problems`)."""
    if not isinstance(entries, list):
        return [Problem(field="entries", reason="must be a list")]
    problems: list[Problem] = []
    seen: set[int] = set()
    for index, entry in enumerate(entries):
        where = f"entries[{index}]"
        if not isinstance(entry, dict):
            problems.append(Problem(field=where, reason="must be an object", index=index))
            continue
        entry_no = entry.get("entry_no")
        if isinstance(entry_no, bool) or not isinstance(entry_no, int) or not 1 <= entry_no <= ENTRY_NO_MAX:
            problems.append(Problem(field=f"{where}.entry_no", index=index,
                                    reason=f"must be a whole number from 1 to {ENTRY_NO_MAX}"))
        elif entry_no in seen:
            problems.append(Problem(field=f"{where}.entry_no", reason=f"entry no. {entry_no} is in the batch twice",
                                    index=index))
        else:
            seen.add(entry_no)
        table = entry.get("table")
        if not isinstance(table, str) or not table:
            # An unknown table name (a newer register's) is the entry's own
            # failure (`table_problem`); a missing one is not even a name.
            problems.append(Problem(field=f"{where}.table", reason="required, a table name", index=index))
        record_id = entry.get("record_id")
        if not isinstance(record_id, str) or not record_id or len(record_id) > 200:
            problems.append(Problem(field=f"{where}.record_id", reason="required, at most 200 characters", index=index))
        for name in ("table", "record_id"):
            text = entry.get(name)
            unstorable = unstorable_text_problem(text) if isinstance(text, str) else None
            if unstorable is not None:
                problems.append(Problem(field=f"{where}.{name}", reason=unstorable.reason, index=index))
        if not isinstance(entry.get("record"), dict):
            problems.append(Problem(field=f"{where}.record", reason="must be an object", index=index))
    return problems


def parse_time(value: str) -> datetime:
    return parse_datetime(value)
