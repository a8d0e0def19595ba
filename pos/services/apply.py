"""Applying received entries on the main system.

`entries_receive` takes a pushed or pulled batch: it validates the whole
batch first (a malformed batch raises InvalidInput and nothing is kept),
tells duplicates (same entry no., same content: the first result again) from
conflicts (same entry no., other content: kept as a SyncConflict for a
person, answered 409), stores the new entries, and applies every entry that
follows the register's watermark without a gap, in entry-no. order. An
entry behind a missing number waits. An entry that cannot be applied (an
unknown SKU, a location that refuses negative stock) is kept failed with
its reason; `entries_retry` applies it once the cause is fixed. Receipt
lines post sale/return moves keyed by register, receipt and line, so a
re-exported record never moves stock twice.

Within one run, entries are applied table by table (customers, processes,
receipts, then lines, payments and counts) with bulk statements, which
gives the same rows as one-by-one application because a line only needs
its receipt to exist; stock moves are posted in one ledger call in entry
order, so counts and sales keep their order."""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from pos.models import (
    CashRegister,
    Customer,
    PaymentLine,
    PosProcess,
    Receipt,
    ReceiptLine,
    StockCount,
    SyncConflict,
    SyncEntry,
    SyncTable,
)
from pos.services import records
from pos.services.receipts import line_move_spec
from pos.services.shapes import batch_problems, record_problems, table_problem
from posinv.api.parsers import storable_copy, unstorable_text_problem
from posinv.exceptions import InvalidInput, Problem
from posinv.models import Article, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

logger = logging.getLogger(__name__)

# How many waiting entries one call takes on after a gap is filled; the
# periodic advance job continues beyond it.
WAITING_CHUNK = 5000
IN = SyncEntry.Direction.IN
State = SyncEntry.State


@dataclass
class Outcome:
    state: str
    result: dict
    error: str = ""


@dataclass
class BatchResult:
    """What happened to a received batch, as answered to the register."""

    applied: int = 0
    duplicate: int = 0
    failed: int = 0
    waiting: int = 0
    released: int = 0
    failures: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    last_applied_entry_no: int = 0
    missing: dict | None = None

    def as_dict(self) -> dict:
        return {
            "applied": self.applied,
            "duplicate": self.duplicate,
            "failed": self.failed,
            "waiting": self.waiting,
            "released": self.released,
            "conflict": len(self.conflicts),
            "failures": self.failures,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "last_applied_entry_no": self.last_applied_entry_no,
            "missing": self.missing,
        }


def register_gap(*, register_id: int, last_applied: int) -> dict | None:
    """The missing entry nos. that hold later entries back, or None."""
    first_waiting = (
        SyncEntry.objects.filter(register_id=register_id, direction=IN, state=State.WAITING, entry_no__gt=last_applied)
        .aggregate(first=Min("entry_no"))["first"]
    )
    if first_waiting is None or first_waiting == last_applied + 1:
        return None
    return {"from": last_applied + 1, "through": first_waiting - 1}


def entries_receive(*, register_id: int, entries: Sequence[dict], keep_malformed: bool = False) -> BatchResult:
    """Store and apply a batch of entries from register `register_id` (see module doc).

    `keep_malformed` (the pull, which has no one to answer 400 to): an entry
    whose envelope is wrong but whose entry no. is sound is kept failed with
    its reason like any entry that cannot be applied, instead of refusing
    the page, so one bad entry in a node's outbox does not stop the pull."""
    problems = batch_problems(entries)
    if problems and keep_malformed:
        entries, problems = _numbered_malformed_kept(entries, problems)
    if problems:
        # Nothing is kept, but the register shows why its batches do not arrive.
        first = problems[0]
        CashRegister.objects.filter(pk=register_id).update(
            last_error=f"a batch was refused whole (HTTP 400): {first.field}: {first.reason}"[:2000],
            last_error_at=timezone.now(),
        )
        raise InvalidInput(problems)
    now = timezone.now()
    with transaction.atomic(durable=True):
        # One apply at a time per register (push, pull and retry alike).
        register = CashRegister.objects.select_for_update().get(pk=register_id)
        result = BatchResult()
        numbers = [entry["entry_no"] for entry in entries]
        existing = {
            row.entry_no: row
            for row in SyncEntry.objects.filter(register_id=register_id, direction=IN, entry_no__in=numbers).only(
                "entry_no", "table", "record_hash", "state", "result"
            )
        }
        new: list[SyncEntry] = []
        conflicts: list[SyncConflict] = []
        for entry in sorted(entries, key=lambda item: item["entry_no"]):
            digest = records.record_hash(entry["record"])
            old = existing.get(entry["entry_no"])
            if old is None:
                record, unstorable = entry["record"], unstorable_text_problem(entry["record"])
                if unstorable is not None:
                    # The database cannot hold it as sent (NUL, unpaired surrogate): a
                    # storable copy is kept so the entry counts as received, and it
                    # fails when applied, every time, naming the field.
                    record = storable_copy(record)
                new.append(
                    SyncEntry(
                        register_id=register_id,
                        direction=IN,
                        entry_no=entry["entry_no"],
                        table=_table_column(entry["table"]),
                        record_id=entry["record_id"],
                        record=record,
                        record_hash=digest,
                        state=State.WAITING,
                        result=_unstorable_mark(unstorable) if unstorable else {},
                    )
                )
            elif old.record_hash == digest and old.table == _table_column(entry["table"]):
                result.duplicate += 1
                result.duplicates.append({"entry_no": old.entry_no, "state": old.state, "result": old.result})
            else:
                conflicts.append(
                    SyncConflict(
                        register_id=register_id,
                        entry_no=entry["entry_no"],
                        table=entry["table"],
                        record_id=entry["record_id"],
                        record=entry["record"],
                        record_hash=digest,
                    )
                )
                result.conflicts.append(
                    {
                        "entry_no": entry["entry_no"],
                        "record_id": entry["record_id"],
                        "reason": f"entry no. {entry['entry_no']} was received before with different content "
                        f"({old.table} {old.record_hash[:12]}…); the first version is kept",
                    }
                )
        if conflicts:
            SyncConflict.objects.bulk_create(conflicts, ignore_conflicts=True)

        # New entries at or below the watermark (never stored, say after a
        # purge) are applied too: they cannot be out of order any more.
        run, watermark = _runnable(new, register.last_applied_entry_no)
        waiting_old: list[SyncEntry] = []
        waiting = SyncEntry.objects.filter(register_id=register_id, direction=IN, state=State.WAITING)
        # Only when this batch filled a gap are earlier waiting entries loaded.
        if waiting.filter(entry_no=watermark + 1).exists():
            waiting_old = list(waiting.filter(entry_no__gt=watermark).order_by("entry_no")[:WAITING_CHUNK])
            in_run = {entry.entry_no for entry in run}
            more, watermark = _runnable([e for e in new if e.entry_no not in in_run] + waiting_old, watermark)
            run += more
        outcomes = _apply(register, run, now=now)
        for entry in run:
            _settle(entry, outcomes[entry.entry_no], now)
        _insert_entries(new)
        released = [entry for entry in waiting_old if entry.entry_no in outcomes]
        if released:
            SyncEntry.objects.bulk_update(released, ["state", "result", "last_error", "attempts", "done_at"])
        for entry in new:
            if entry.state == State.APPLIED:
                result.applied += 1
            elif entry.state == State.FAILED:
                result.failed += 1
                result.failures.append({"entry_no": entry.entry_no, "record_id": entry.record_id,
                                        **_failure_fields(entry.result)})
            else:
                result.waiting += 1
        failed_now = result.failed or any(entry.state == State.FAILED for entry in released)
        error = register.last_error
        if failed_now or error:
            # Only then is it worth a query: the error names the failed entries until none is left.
            error = failed_entries_summary(register_id=register_id)
        CashRegister.objects.filter(pk=register_id).update(
            last_applied_entry_no=watermark, last_success_at=now, last_error=error,
            **({"last_error_at": now} if failed_now else {}),
        )
        result.released = len(released)
        result.last_applied_entry_no = watermark
        result.missing = register_gap(register_id=register_id, last_applied=watermark)
    return result


def _numbered_malformed_kept(entries, problems) -> tuple[list[dict], list]:
    """Entries whose envelope problems leave their entry no. sound, made
    storable (their table or record shows what is wrong, so applying fails
    them with the reason); the problems that remain refuse the batch."""
    if not isinstance(entries, list):
        return entries, problems
    unnumbered = {p.index for p in problems if p.index is None or p.field.endswith(".entry_no")
                  or not isinstance(entries[p.index], dict)}
    if None in unnumbered:
        return entries, problems
    kept = []
    for index, entry in enumerate(entries):
        if index in unnumbered or not any(p.index == index for p in problems):
            kept.append(entry)
            continue
        table, record_id, record = entry.get("table"), entry.get("record_id"), entry.get("record")
        if not isinstance(record, dict):
            # A record that is no object cannot be applied: an unknown table says so.
            table = f"(record is {type(record).__name__})"
        if not isinstance(record_id, str) or not record_id:
            record_id = f"entry:{entry['entry_no']}"
        kept.append({
            "entry_no": entry["entry_no"],
            "table": table if isinstance(table, str) and table else "(no table)",
            "record_id": record_id[:200],
            "record": record if isinstance(record, dict) else {"received": record},
        })
    return kept, [p for p in problems if p.index in unnumbered]


ENTRY_FIELDS = ("register_id", "direction", "entry_no", "table", "record_id", "record", "record_hash", "state",
                "attempts", "last_error", "result", "created_at", "done_at")
LINE_FIELDS = ("receipt_id", "line_no", "article_id", "sku", "barcode", "quantity", "unit_price", "discount",
               "stock_move_id")
PAYMENT_FIELDS = ("receipt_id", "line_no", "method", "amount")


def _insert(model, objs: list, fields: tuple[str, ...]) -> None:
    """Insert new rows (no conflict possible: the register's row lock is
    held and they were looked up first). On PostgreSQL with COPY: the ORM's
    multi-row INSERT spends most of a 500-entry batch adapting values
    (bench/RESULTS.md); COPY takes them as they are."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    now = timezone.now()
    json_fields = {"record", "result"} if model is SyncEntry else set()
    columns = ", ".join(f'"{model._meta.get_field(name).column}"' for name in fields)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
            for obj in objs:
                row = []
                for name in fields:
                    value = getattr(obj, name)
                    if name in json_fields:
                        value = None if value is None else json.dumps(value)
                    elif name == "created_at":
                        value = value or now
                    elif name in ("attempts",):
                        value = value or 0
                    elif name == "last_error":
                        value = value or ""
                    row.append(value)
                copy.write_row(row)


def _insert_entries(entries: list[SyncEntry]) -> None:
    _insert(SyncEntry, entries, ENTRY_FIELDS)


def entries_advance(*, register_id: int) -> int:
    """Apply waiting entries that no longer wait for anything (after a large
    gap was filled, beyond what one call takes on); returns how many."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        register = CashRegister.objects.select_for_update().get(pk=register_id)
        waiting = list(
            SyncEntry.objects.filter(register_id=register_id, direction=IN, state=State.WAITING)
            .order_by("entry_no")[:WAITING_CHUNK]
        )
        run, watermark = _runnable(waiting, register.last_applied_entry_no)
        if not run:
            return 0
        outcomes = _apply(register, run, now=now)
        for entry in run:
            _settle(entry, outcomes[entry.entry_no], now)
        SyncEntry.objects.bulk_update(run, ["state", "result", "last_error", "attempts", "done_at"])
        failed_now = any(entry.state == State.FAILED for entry in run)
        extra = {}
        if failed_now:
            extra = {"last_error": failed_entries_summary(register_id=register_id), "last_error_at": now}
        CashRegister.objects.filter(pk=register_id).update(last_applied_entry_no=watermark, **extra)
        return len(run)


def entries_retry(*, register_id: int, entry_ids: Sequence[int] | None = None) -> dict:
    """Apply failed entries again, in entry-no. order (after the cause was
    fixed, say the article was imported). Returns counts of applied and
    still failed."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        register = CashRegister.objects.select_for_update().get(pk=register_id)
        applied = failed_again = 0
        # Received entries, then re-exports made here (numbered apart).
        for direction in (IN, SyncEntry.Direction.OUT):
            failed = SyncEntry.objects.filter(register_id=register_id, direction=direction, state=State.FAILED)
            if entry_ids is not None:
                failed = failed.filter(pk__in=list(entry_ids))
            run = list(failed.order_by("entry_no"))
            if not run:
                continue
            outcomes = _apply(register, run, now=now)
            for entry in run:
                _settle(entry, outcomes[entry.entry_no], now)
            SyncEntry.objects.bulk_update(run, ["state", "result", "last_error", "attempts", "done_at"])
            done = sum(1 for entry in run if entry.state == State.APPLIED)
            applied += done
            failed_again += len(run) - done
        if applied or failed_again:
            CashRegister.objects.filter(pk=register_id).update(
                last_error=failed_entries_summary(register_id=register_id),
                **({"last_error_at": now} if failed_again else {}),
            )
        return {"applied": applied, "failed": failed_again}


def entries_skip(*, register_id: int, entry_ids: Sequence[int], reason: str, user: str) -> int:
    """Park failed entries a person decided not to apply (say a sale the
    main system will never accept, booked by hand instead): they become
    `skipped` with the reason, who and when, keep their record, stop
    counting as failed (health turns green again), and a retry no longer
    takes them. Returns how many. Nothing moves: a skipped receipt line
    keeps no stock move, which is the person's decision, recorded."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput([Problem(field="reason", reason="say why the entries are skipped", code="required")])
    now = timezone.now()
    with transaction.atomic():
        CashRegister.objects.select_for_update().get(pk=register_id)
        rows = list(
            SyncEntry.objects.filter(register_id=register_id, state=State.FAILED, pk__in=list(entry_ids))
        )
        for entry in rows:
            entry.result = {
                "status": "skipped", "reason": reason, "by": user, "at": now.isoformat(),
                "failure": entry.result,
            }
            entry.state = State.SKIPPED
            entry.done_at = now
        SyncEntry.objects.bulk_update(rows, ["state", "result", "done_at"])
        if rows:
            CashRegister.objects.filter(pk=register_id).update(
                last_error=failed_entries_summary(register_id=register_id)
            )
        return len(rows)


def failed_entries_summary(*, register_id: int) -> str:
    """The register's last error while some of its entries are failed, in
    words a person can act on; "" when none is."""
    failed = SyncEntry.objects.filter(register_id=register_id, state=State.FAILED)
    first = failed.order_by("direction", "entry_no").only("entry_no", "record_id", "last_error").first()
    if first is None:
        return ""
    count = failed.count()
    more = f" and {count - 1} more" if count > 1 else ""
    return (
        f"{count} failed entr{'y' if count == 1 else 'ies'}: entry {first.entry_no} ({first.record_id}) "
        f"could not be applied: {first.last_error}{more}. Fix the cause and Retry, or Skip them with a reason "
        "(Synchronization entries, state failed)"
    )[:2000]


def entries_apply_local(*, entries: Sequence[SyncEntry]) -> dict:
    """Apply entries written on this system (a re-export on the main system)
    at once; they get their outcome like received entries."""
    entries = sorted(entries, key=lambda entry: entry.entry_no)
    if not entries:
        return {"applied": 0, "failed": 0}
    now = timezone.now()
    with transaction.atomic():
        register = CashRegister.objects.select_for_update().get(pk=entries[0].register_id)
        outcomes = _apply(register, list(entries), now=now)
        for entry in entries:
            _settle(entry, outcomes[entry.entry_no], now)
        SyncEntry.objects.bulk_update(entries, ["state", "result", "last_error", "attempts", "done_at"])
    applied = sum(1 for entry in entries if entry.state == State.APPLIED)
    return {"applied": applied, "failed": len(entries) - applied}


def _runnable(candidates: list[SyncEntry], watermark: int) -> tuple[list[SyncEntry], int]:
    """The candidates to apply now: late ones at or below the watermark, then
    the gap-free run that follows it. Returns them and the new watermark."""
    run = []
    for entry in sorted(candidates, key=lambda item: item.entry_no):
        if entry.entry_no <= watermark:
            run.append(entry)
        elif entry.entry_no == watermark + 1:
            run.append(entry)
            watermark += 1
        else:
            break
    return run, watermark


def _settle(entry: SyncEntry, outcome: Outcome, now: datetime) -> None:
    entry.state = outcome.state
    entry.result = outcome.result
    entry.last_error = outcome.error
    entry.attempts = (entry.attempts or 0) + 1
    entry.done_at = now if outcome.state == State.APPLIED else None


def _failed(reason: str, *, field_name: str, code: str = "invalid") -> Outcome:
    return Outcome(
        state=State.FAILED,
        result={"status": "failed", "field": field_name, "code": code, "reason": reason},
        error=f"{field_name}: {reason}",
    )


# In an entry's `result`: the record as sent held text no database can store;
# the entry keeps a storable copy and fails with this reason on every apply.
UNSTORABLE = "unstorable"


def _unstorable_mark(problem: Problem) -> dict:
    return {UNSTORABLE: {"field": problem.field, "reason": problem.reason}}


def _applied(**result) -> Outcome:
    return Outcome(state=State.APPLIED, result={"status": "applied", **result})


def _time(value: str | None) -> datetime | None:
    # In UTC: PostgreSQL refuses the zone offsets beyond 16 hours that Python accepts (shapes checked the range).
    return parse_datetime(value).astimezone(UTC) if value else None


def _table_column(table: str) -> str:
    # An unknown (say a newer register's) table name is kept, failed, in the column's width.
    return table[: SyncEntry._meta.get_field("table").max_length]


def _failure_fields(result: dict) -> dict:
    return {key: result.get(key, "") for key in ("field", "code", "reason")}


def _apply(register: CashRegister, entries: list[SyncEntry], *, now: datetime) -> dict[int, Outcome]:
    """Apply `entries` (already in entry-no. order) and return each outcome.

    One entry never stops the others: a record the main system refuses
    (its fields: `record_problems`, checked here so a retry uses today's
    rules) is failed with its reason and left out; if the rest fails in the
    database all the same (say a stock level would overflow), the run is
    rolled back to a savepoint and applied entry by entry, each in its own
    savepoint, so only the entry at fault is failed, with the database's
    reason."""
    outcomes: dict[int, Outcome] = {}
    valid = []
    for entry in entries:
        unknown_table = table_problem(entry.table)
        unstorable = (entry.result or {}).get(UNSTORABLE)
        if unstorable:
            problems = [Problem(field=f"record.{unstorable['field']}", reason=unstorable["reason"])]
        else:
            problems = [unknown_table] if unknown_table else record_problems(entry.table, entry.record,
                                                                             where="record")
        if problems:
            first = problems[0]
            outcomes[entry.entry_no] = _failed(
                "; ".join(f"{p.field}: {p.reason}" for p in problems)[:1000] if len(problems) > 1 else first.reason,
                field_name=first.field, code=first.code or "invalid",
            )
            if unstorable:
                outcomes[entry.entry_no].result[UNSTORABLE] = unstorable
        else:
            valid.append(entry)
    if not valid:
        return outcomes
    try:
        with transaction.atomic():
            outcomes.update(_apply_valid(register, valid, now=now))
        return outcomes
    except (DataError, IntegrityError):
        # Caused by the data (an overflow, a constraint), not by the database
        # being unwell: an OperationalError propagates and the batch is sent again.
        logger.warning("register %s: a run of %d entries failed in the database; applying them one by one",
                       register.code, len(valid), exc_info=True)
    for entry in valid:
        try:
            with transaction.atomic():
                outcomes.update(_apply_valid(register, [entry], now=now))
        except (DataError, IntegrityError) as exc:
            reason = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
            outcomes[entry.entry_no] = _failed(f"the main system's database refused it: {reason}",
                                               field_name="record", code="not_applicable")
    return outcomes


def _apply_valid(register: CashRegister, entries: list[SyncEntry], *, now: datetime) -> dict[int, Outcome]:
    """Apply valid `entries` in entry-no. order; returns each outcome."""
    outcomes: dict[int, Outcome] = {}
    by_table: dict[str, list[SyncEntry]] = defaultdict(list)
    for entry in entries:
        by_table[entry.table].append(entry)

    customer_ids = _apply_customers(by_table[SyncTable.CUSTOMER], entries, outcomes)
    process_ids = _apply_processes(register, by_table[SyncTable.POS_PROCESS], entries, outcomes)
    receipt_ids = _apply_receipts(register, by_table[SyncTable.RECEIPT], entries, outcomes, customer_ids, process_ids,
                                  now=now)
    _apply_stock(register, by_table[SyncTable.RECEIPT_LINE], by_table[SyncTable.STOCK_COUNT], outcomes, receipt_ids)
    _apply_payments(by_table[SyncTable.PAYMENT_LINE], outcomes, receipt_ids)
    return outcomes


def _apply_customers(items: list[SyncEntry], all_entries: list[SyncEntry], outcomes) -> dict[str, int]:
    latest: dict[str, dict] = {}
    for entry in items:
        latest[entry.record["customer_no"]] = entry.record
    # Receipts may name customers whose own entries did not travel (the
    # customer table disabled): they get a row with the number only.
    wanted = set(latest) | {
        entry.record["customer_no"]
        for entry in all_entries
        if entry.table == SyncTable.RECEIPT and entry.record.get("customer_no")
    }
    if not wanted:
        return {}
    rows = {row.customer_no: row for row in Customer.objects.filter(customer_no__in=wanted)}
    changed = []
    for number, record in latest.items():
        values = {key: record.get(key) or "" for key in ("name", "email", "card_no")}
        row = rows.get(number)
        if row is None:
            rows[number] = Customer(customer_no=number, **values)
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            changed.append(row)
    missing = [Customer(customer_no=number) for number in wanted if number not in rows]
    for row in missing:
        rows[row.customer_no] = row
    fresh = [row for row in rows.values() if row.pk is None]
    if fresh:
        # Customers are shared by all registers: another register's batch may
        # create the same one at the same time (no pks come back; re-read below).
        Customer.objects.bulk_create(fresh, ignore_conflicts=True)
    if changed:
        Customer.objects.bulk_update(changed, ["name", "email", "card_no", "updated_at"])
    for entry in items:
        outcomes[entry.entry_no] = _applied(customer_no=entry.record["customer_no"])
    if fresh:
        rows = {row.customer_no: row for row in Customer.objects.filter(customer_no__in=wanted)}
    return {number: row.pk for number, row in rows.items()}


def _apply_processes(register, items, all_entries, outcomes) -> dict[str, int]:
    latest: dict[str, dict] = {}
    for entry in items:
        latest[entry.record["process_no"]] = entry.record
    opened_by_receipt: dict[str, datetime] = {}
    for entry in all_entries:
        number = entry.record.get("process_no") if entry.table == SyncTable.RECEIPT else None
        if number:
            opened_by_receipt.setdefault(number, _time(entry.record["created_at"]))
    wanted = set(latest) | set(opened_by_receipt)
    if not wanted:
        return {}
    rows = {row.process_no: row for row in PosProcess.objects.filter(register=register, process_no__in=wanted)}
    changed = []
    for number, record in latest.items():
        values = {
            "opened_at": _time(record["opened_at"]),
            "closed_at": _time(record.get("closed_at")),
            "cashier": record.get("cashier") or "",
            "status": record.get("status") or PosProcess.Status.OPEN,
        }
        row = rows.get(number)
        if row is None:
            rows[number] = PosProcess(register=register, process_no=number, **values)
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            changed.append(row)
    for number, opened_at in opened_by_receipt.items():
        if number not in rows:
            # The process table is not transferred: the first receipt opens it.
            rows[number] = PosProcess(register=register, process_no=number, opened_at=opened_at)
    fresh = [row for row in rows.values() if row.pk is None]
    if fresh:
        PosProcess.objects.bulk_create(fresh)
    if changed:
        PosProcess.objects.bulk_update(changed, ["opened_at", "closed_at", "cashier", "status"])
    for entry in items:
        outcomes[entry.entry_no] = _applied(process_no=entry.record["process_no"])
    if any(row.pk is None for row in rows.values()):
        rows = {row.process_no: row for row in PosProcess.objects.filter(register=register, process_no__in=wanted)}
    return {number: row.pk for number, row in rows.items()}


def _apply_receipts(register, items, all_entries, outcomes, customer_ids, process_ids, *, now) -> dict[str, int]:
    latest: dict[str, dict] = {}
    for entry in items:
        latest[entry.record["receipt_no"]] = entry.record
    wanted = set(latest) | {
        entry.record["receipt_no"]
        for entry in all_entries
        if entry.table in (SyncTable.RECEIPT_LINE, SyncTable.PAYMENT_LINE)
    }
    if not wanted:
        return {}
    rows = {row.receipt_no: row for row in Receipt.objects.filter(register=register, receipt_no__in=wanted)}
    changed = []
    for number, record in latest.items():
        values = {
            "process_id": process_ids.get(record.get("process_no")) if record.get("process_no") else None,
            "customer_id": customer_ids.get(record.get("customer_no")) if record.get("customer_no") else None,
            "total": Decimal(record["total"]),
            "currency": record.get("currency") or register.currency,
            "created_at": _time(record["created_at"]),
        }
        row = rows.get(number)
        if row is None:
            rows[number] = Receipt(register=register, receipt_no=number, source=Receipt.Source.SYNC, **values)
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            changed.append(row)
    for number in wanted - rows.keys():
        # Lines whose receipt header does not travel (the receipt table is
        # disabled, or it comes later): a header with what is known.
        rows[number] = Receipt(
            register=register, receipt_no=number, source=Receipt.Source.SYNC, created_at=now,
            currency=register.currency,
        )
    fresh = [row for row in rows.values() if row.pk is None]
    if fresh:
        Receipt.objects.bulk_create(fresh)
    if changed:
        Receipt.objects.bulk_update(changed, ["process_id", "customer_id", "total", "currency", "created_at"])
    for entry in items:
        outcomes[entry.entry_no] = _applied(receipt_no=entry.record["receipt_no"])
    if any(row.pk is None for row in rows.values()):
        rows = {row.receipt_no: row for row in Receipt.objects.filter(register=register, receipt_no__in=wanted)}
    return {number: row.pk for number, row in rows.items()}


def _line_values(record: dict) -> tuple:
    return (
        record["sku"],
        record.get("barcode") or "",
        Decimal(record["quantity"]).quantize(records.QTY),
        Decimal(record["unit_price"]).quantize(records.CENT),
        Decimal(record.get("discount") or "0").quantize(records.CENT),
    )


def _apply_stock(register, line_items, count_items, outcomes, receipt_ids) -> None:
    """Receipt lines and stock counts: upsert the rows, post their moves in one
    ledger call in entry order, and record each entry's outcome."""
    if not line_items and not count_items:
        return
    skus = {entry.record["sku"] for entry in line_items + count_items}
    articles = dict(Article.objects.filter(sku__in=skus).values_list("sku", "pk"))
    existing = {
        (row["receipt_id"], row["line_no"]): row
        for row in ReceiptLine.objects.filter(receipt_id__in={receipt_ids[e.record["receipt_no"]] for e in line_items})
        .values("receipt_id", "line_no", "sku", "barcode", "quantity", "unit_price", "discount", "stock_move_id")
    } if line_items else {}

    lines: dict[tuple[int, int], ReceiptLine] = {}
    counts: dict[tuple[str, str], StockCount] = {}
    moves: list[MoveSpec] = []
    move_owner: list[tuple[SyncEntry, object]] = []  # (entry, the row that gets the move)
    owner_of_key: dict[tuple, object] = {}
    for entry in sorted(line_items + count_items, key=lambda item: item.entry_no):
        record = entry.record
        if entry.table == SyncTable.RECEIPT_LINE:
            key = (receipt_ids[record["receipt_no"]], record["line_no"])
            values = _line_values(record)
            old = existing.get(key)
            if old is not None:
                stored = (old["sku"], old["barcode"], old["quantity"], old["unit_price"], old["discount"])
                if old["stock_move_id"] is not None:
                    if stored != values:
                        outcomes[entry.entry_no] = _failed(
                            f"line {record['line_no']} of receipt {record['receipt_no']} was applied before "
                            f"with other content ({old['sku']} x {old['quantity']}); the first version is kept",
                            field_name="record", code="conflict",
                        )
                    else:
                        outcomes[entry.entry_no] = _applied(move_id=old["stock_move_id"])
                    continue
            row = lines.get(key)
            if row is not None:
                same = (row.sku, row.barcode, row.quantity, row.unit_price, row.discount) == values
                if not same:
                    outcomes[entry.entry_no] = _failed(
                        f"line {record['line_no']} of receipt {record['receipt_no']} is in this run twice "
                        "with different content", field_name="record", code="conflict",
                    )
                    continue
                move_owner.append((entry, row))
                continue
            sku, barcode, quantity, unit_price, discount = values
            row = ReceiptLine(
                receipt_id=key[0], line_no=key[1], article_id=articles.get(sku), sku=sku, barcode=barcode,
                quantity=quantity, unit_price=unit_price, discount=discount,
            )
            lines[key] = row
            moves.append(
                line_move_spec(register=register, receipt_no=record["receipt_no"], line_no=key[1], sku=sku,
                               quantity=quantity)
            )
            owner_of_key[moves[-1].idempotency_key] = row
            move_owner.append((entry, row))
        else:
            counted_at = _time(record["counted_at"])
            key = (record["sku"], records.iso(counted_at))
            row = counts.get(key)
            if row is None:
                row = StockCount(
                    register=register, sku=record["sku"], article_id=articles.get(record["sku"]),
                    counted_qty=Decimal(record["counted_qty"]), counted_at=counted_at,
                )
                counts[key] = row
                moves.append(
                    MoveSpec(
                        kind=StockMove.Kind.COUNT,
                        idempotency_key=f"pos:{register.code}:count:{key[0]}:{key[1]}",
                        counted=row.counted_qty,
                        sku=row.sku,
                        location_id=register.location_id,
                        reference=f"count at register {register.code}",
                    )
                )
                owner_of_key[moves[-1].idempotency_key] = row
            move_owner.append((entry, row))

    problems: dict[int, object] = {}
    if moves:
        posted = stock_moves_post(
            moves=moves, origin=StockOrigin(kind="register", code=register.code), partial_ok=True
        )
        for index, item in enumerate(posted.results):
            row = owner_of_key[moves[index].idempotency_key]
            if item.status in ("posted", "duplicate"):
                row.stock_move_id = item.move_id
            elif item.status == "refused":
                problems[id(row)] = item.problem
    for entry, row in move_owner:
        problem = problems.get(id(row))
        if problem is not None:
            outcomes[entry.entry_no] = _failed(problem.reason, field_name=problem.field or "record",
                                               code=problem.code)
        else:
            outcomes[entry.entry_no] = _applied(move_id=row.stock_move_id)

    fresh = [row for key, row in lines.items() if key not in existing]
    _insert(ReceiptLine, fresh, LINE_FIELDS)
    stale = [row for key, row in lines.items() if key in existing]
    if stale:
        # Kept earlier without a move (say an unknown SKU): fill them in.
        ReceiptLine.objects.bulk_create(
            stale,
            update_conflicts=True,
            unique_fields=["receipt", "line_no"],
            update_fields=["article", "sku", "barcode", "quantity", "unit_price", "discount", "stock_move"],
        )
    if counts:
        StockCount.objects.bulk_create(
            list(counts.values()),
            update_conflicts=True,
            unique_fields=["register", "sku", "counted_at"],
            update_fields=["article", "counted_qty", "stock_move"],
        )


def _apply_payments(items, outcomes, receipt_ids) -> None:
    if not items:
        return
    rows: dict[tuple[int, int], PaymentLine] = {}
    for entry in items:
        record = entry.record
        key = (receipt_ids[record["receipt_no"]], record["line_no"])
        rows[key] = PaymentLine(
            receipt_id=key[0], line_no=key[1], method=record["method"],
            amount=Decimal(record["amount"]).quantize(records.CENT),
        )
        outcomes[entry.entry_no] = _applied(receipt_no=record["receipt_no"])
    existing = set(
        PaymentLine.objects.filter(receipt_id__in={key[0] for key in rows}).values_list("receipt_id", "line_no")
    )
    _insert(PaymentLine, [row for key, row in rows.items() if key not in existing], PAYMENT_FIELDS)
    again = [row for key, row in rows.items() if key in existing]
    if again:
        PaymentLine.objects.bulk_create(
            again, update_conflicts=True, unique_fields=["receipt", "line_no"], update_fields=["method", "amount"],
        )
