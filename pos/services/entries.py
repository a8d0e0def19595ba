"""The outbox of a register node: entries written in the sale's transaction
with a gap-free entry no. per register, and re-exports of a POS process or a
receipt (which append the same records again; the main system applies them
idempotently, so stock never moves twice)."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from pos.models import CashRegister, PosProcess, Receipt, SyncEntry
from pos.services import records


def _is_node() -> bool:
    from django.conf import settings

    return settings.POSINV_NODE == "register"


def _exported(entries: list[SyncEntry]) -> list[SyncEntry]:
    """On a register node exported entries wait in the outbox for the next
    push or pull. On the main system there is no one to send them to, so
    they are applied here at once, like received entries: the rows are
    written again and no stock moves twice (the moves are keyed)."""
    if entries and not _is_node():
        from pos.services.apply import entries_apply_local

        entries_apply_local(entries=entries)
    return entries


def entries_write(*, register_id: int, rows: Sequence[tuple[str, str, dict]]) -> list[SyncEntry]:
    """Append one outbox entry per row of an enabled table; returns them.

    Must run inside the transaction that wrote the rows: the register row is
    locked to take the entry numbers, so they are gap-free (a rolled-back
    sale rolls its numbers back too) and in commit order per register."""
    with transaction.atomic():
        register = (
            CashRegister.objects.select_for_update().only("pk", "tables", "next_entry_no").get(pk=register_id)
        )
        wanted = [row for row in rows if register.table_enabled(row[0])]
        if not wanted:
            return []
        first = register.next_entry_no
        entries = [
            SyncEntry(
                register_id=register_id,
                direction=SyncEntry.Direction.OUT,
                entry_no=first + offset,
                table=table,
                record_id=record_id,
                record=record,
                record_hash=records.record_hash(record),
                state=SyncEntry.State.PENDING,
            )
            for offset, (table, record_id, record) in enumerate(wanted)
        ]
        SyncEntry.objects.bulk_create(entries)
        CashRegister.objects.filter(pk=register_id).update(next_entry_no=first + len(entries))
        return entries


def receipt_rows(receipt: Receipt, *, register_code: str) -> list[tuple[str, str, dict]]:
    """The records of one receipt in apply order: customer, receipt, lines, payments."""
    rows = []
    customer = receipt.customer
    if customer is not None:
        rows.append(records.customer_record(customer))
    process_no = receipt.process.process_no if receipt.process_id else None
    rows.append(
        records.receipt_record_of(
            receipt, process_no=process_no, customer_no=customer.customer_no if customer else None
        )
    )
    rows += [records.line_record(line, receipt.receipt_no) for line in receipt.lines.all()]
    rows += [records.payment_record(payment, receipt.receipt_no) for payment in receipt.payments.all()]
    return rows


def receipt_export(*, receipt_id: int) -> list[SyncEntry]:
    """Write a receipt's records (customer, receipt, lines, payments) to the
    entries again (Receipt card → Export); see `_exported`."""
    with transaction.atomic():
        receipt = (
            Receipt.objects.select_related("register", "customer", "process")
            .prefetch_related("lines", "payments")
            .get(pk=receipt_id)
        )
        return _exported(
            entries_write(
                register_id=receipt.register_id, rows=receipt_rows(receipt, register_code=receipt.register.code)
            )
        )


def pos_process_export(*, process_id: int, include_receipts: bool = False) -> list[SyncEntry]:
    """Write a POS process's record to the entries again, and with
    `include_receipts` every receipt of it (POS Process card → Export)."""
    with transaction.atomic():
        process = PosProcess.objects.select_related("register").get(pk=process_id)
        code = process.register.code
        rows = [records.process_record(process, code)]
        if include_receipts:
            receipts = (
                process.receipts.select_related("customer", "process")
                .prefetch_related("lines", "payments")
                .order_by("created_at", "pk")
            )
            for receipt in receipts:
                rows += receipt_rows(receipt, register_code=code)
        return _exported(entries_write(register_id=process.register_id, rows=rows))


def outbox_pending_count(*, register_id: int) -> int:
    return SyncEntry.objects.filter(
        register_id=register_id, direction=SyncEntry.Direction.OUT, state=SyncEntry.State.PENDING
    ).count()


def outbox_mark_delivered(*, register_id: int, through: int) -> int:
    """Mark outbox entries up to `through` delivered (the main system has
    them; an entry it once refused whole too, since it now holds it)."""
    return SyncEntry.objects.filter(
        register_id=register_id,
        direction=SyncEntry.Direction.OUT,
        state__in=[SyncEntry.State.PENDING, SyncEntry.State.FAILED],
        entry_no__lte=through,
    ).update(state=SyncEntry.State.DELIVERED, done_at=timezone.now())


def outbox_requeue_after(*, register_id: int, after: int) -> int:
    """The main system has nothing beyond `after` (say it was restored from a
    backup): send every later entry again. Applying is idempotent."""
    return SyncEntry.objects.filter(
        register_id=register_id,
        direction=SyncEntry.Direction.OUT,
        state=SyncEntry.State.DELIVERED,
        entry_no__gt=after,
    ).update(state=SyncEntry.State.PENDING, done_at=None)


def outbox_mark_refused(*, register_id: int, refusals: dict[int, str]) -> int:
    """The main system refused these outbox entries whole ({entry no.:
    reason}): they are kept `failed` with the reason for a person (node
    admin, health) instead of being sent again and again, and the push
    carries on with the others."""
    marked = 0
    for entry_no, reason in refusals.items():
        marked += SyncEntry.objects.filter(
            register_id=register_id, direction=SyncEntry.Direction.OUT, entry_no=entry_no,
            state=SyncEntry.State.PENDING,
        ).update(state=SyncEntry.State.FAILED, last_error=reason[:2000], attempts=F("attempts") + 1)
    return marked
