"""Readings become stock: the weight-to-quantity rule (docs/cabinets.md).

`readings_apply` takes a batch of tray readings from one cabinet (pushed or
pulled) and, in one transaction, decides each reading's outcome, posts the
changed counts through the ledger in ONE `stock_moves_post` call, records
every reading, updates the trays, raises shrink alerts and opens or closes
order suggestions. Its statement count does not grow with the batch (apart
from one or two per tray crossing its threshold)."""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cabinets.models import ShrinkAlert, Tray, WeighingCabinet, WeightReading
from posinv.bounds import quantity_problem, quantity_within
from posinv.models import ReorderSuggestion, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.suggestions import suggestion_close, suggestion_open

logger = logging.getLogger(__name__)

# A cabinet clock may run a little ahead of ours; further ahead is a broken clock,
# and accepting it would make every later real reading look stale.
FUTURE_SKEW = timedelta(minutes=5)
# Rejections that may pass once time has caught up or the cabinet resends:
# a pull cursor never moves over them.
NOT_FINAL = frozenset({"future_read_at"})
TRAY_FIELDS = [
    "position", "weight_g", "quantity", "state", "last_read_at", "quantity_since", "counted_at", "held_quantity",
    "suggesting",
]
Outcome = WeightReading.Outcome


@dataclass(frozen=True)
class ReadingIn:
    """One reading as sent: tray id, gross weight in grams, position, read time (aware)."""

    tray_id: str
    weight_g: Decimal
    read_at: datetime
    position: str = ""


@dataclass
class ReadingResult:
    """What became of one reading: `status` is applied, duplicate or rejected;
    `outcome` says what an applied one did (posted, unchanged, held, stale)."""

    index: int
    tray_id: str
    read_at: datetime
    status: str
    outcome: str = ""
    quantity: Decimal | None = None
    move_id: int | None = None
    code: str = ""
    reason: str = ""
    position_ignored: bool = False


@dataclass
class ApplyResult:
    results: list[ReadingResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def counts(self) -> dict[str, int]:
        outcomes: dict[str, int] = defaultdict(int)
        for r in self.results:
            if r.status == "applied":
                outcomes[r.outcome] += 1
        return {
            "received": len(self.results),
            "applied": self.count("applied"),
            "duplicate": self.count("duplicate"),
            "rejected": self.count("rejected"),
            **{name: outcomes.get(name, 0) for name in ("posted", "unchanged", "held", "stale")},
        }


@dataclass
class _Decision:
    """A reading being worked on: its row to insert and what it changes."""

    index: int
    reading: ReadingIn
    row: WeightReading
    tray: Tray | None = None
    move_index: int | None = None
    previous_quantity: Decimal | None = None
    previous_since: datetime | None = None


def _n(value: Decimal) -> str:
    """A quantity as people write it: 20, not 20.000."""
    return format(value.normalize(), "f")


def reading_key(*, cabinet_code: str, tray_id: str, read_at: datetime) -> str:
    """The ledger idempotency key of a reading's count: cabinet, tray and read time (UTC, microseconds)."""
    stamp = read_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"cabinet:{cabinet_code}:{tray_id}:{stamp}"


def quantity_margin(*, cabinet: WeighingCabinet, quantity: Decimal) -> Decimal:
    """The hysteresis margin around a tray's posted quantity: the cabinet's
    fixed margin, or the count times the piece-weight spread when larger
    (400 pieces at 1 % may be off by 4 without anything having moved)."""
    spread = (quantity * cabinet.piece_variation).to_integral_value(rounding=ROUND_FLOOR)
    return max(cabinet.hysteresis_units, spread)


def readings_apply(
    *, cabinet: WeighingCabinet, readings: list[ReadingIn], via: str, now: datetime | None = None
) -> ApplyResult:
    """Apply a batch of readings of `cabinet`; each is independent (applied,
    duplicate or rejected with a reason), and the whole batch commits at once."""
    now = now or timezone.now()
    if not readings:
        # An empty push or pull page: nothing arrived, so the cabinet still counts as silent.
        return ApplyResult()
    with transaction.atomic(durable=True):
        return _apply(cabinet, readings, via, now)


def _apply(cabinet: WeighingCabinet, readings: list[ReadingIn], via: str, now: datetime) -> ApplyResult:
    results: dict[int, ReadingResult] = {}
    codes = {r.tray_id for r in readings}
    # Locked in pk order: a push and a pull of the same cabinet serialize here.
    trays = {
        t.tray_id: t
        for t in Tray.objects.select_for_update(of=("self",))
        .select_related("article")
        .filter(cabinet=cabinet, tray_id__in=codes)
        .order_by("pk")
    }
    seen, rejected_before = _received_before(cabinet, readings)
    before = {t.pk: t.quantity for t in trays.values()}

    order = sorted(range(len(readings)), key=lambda i: (readings[i].tray_id, readings[i].read_at, i))
    decisions: list[_Decision] = []
    first_in_batch: dict[tuple[str, datetime], int] = {}
    for index in order:
        reading = readings[index]
        key = (reading.tray_id, reading.read_at)
        if key in seen:
            old = seen[key]
            results[index] = ReadingResult(
                index=index, tray_id=reading.tray_id, read_at=reading.read_at, status="duplicate",
                outcome=old["outcome"], quantity=old["quantity"], move_id=old["move_id"],
            )
            continue
        if key in first_in_batch:
            # Resolved once the first one is decided (below).
            results[index] = ReadingResult(
                index=index, tray_id=reading.tray_id, read_at=reading.read_at, status="duplicate_of",
                move_id=first_in_batch[key],
            )
            continue
        first_in_batch[key] = index
        decisions.append(_decide(cabinet, trays.get(reading.tray_id), index, reading, via, now))

    moves = _count_moves(cabinet, decisions, trays, before)
    posted = stock_moves_post(moves=moves, origin=StockOrigin(kind="cabinet", code=cabinet.code)) if moves else None
    for decision in decisions:
        if decision.move_index is not None:
            decision.row.move_id = posted.results[decision.move_index].move_id
    # A reading rejected before for the same reason (a cabinet or vendor that
    # keeps sending it) is answered again but not recorded again.
    fresh = [d for d in decisions
             if d.row.outcome != Outcome.REJECTED
             or (d.reading.tray_id, d.reading.read_at, d.row.reason) not in rejected_before]
    _readings_insert([d.row for d in fresh])
    _shrink_alerts(cabinet, [d for d in decisions if d.move_index is not None])

    touched = {d.tray.pk: d.tray for d in decisions if d.tray is not None and d.row.outcome != Outcome.REJECTED}
    _suggestions(cabinet, list(touched.values()))
    _trays_write(list(touched.values()))
    # Only an accepted reading (or a repeat of one) says the cabinet is reading:
    # a rejected one (a broken clock, an unknown tray) must not hide a silent cabinet.
    changes = {}
    if seen or any(d.row.outcome != Outcome.REJECTED for d in decisions):
        changes["last_reading_at"] = now
    newly_rejected = [d for d in fresh if d.row.outcome == Outcome.REJECTED]
    if newly_rejected:
        changes.update(last_rejected_at=now, last_rejected_reason=newly_rejected[0].row.reason[:200])
    if changes:
        WeighingCabinet.objects.filter(pk=cabinet.pk).update(**changes)
        for name, value in changes.items():
            setattr(cabinet, name, value)

    for d in decisions:
        results[d.index] = ReadingResult(
            index=d.index,
            tray_id=d.reading.tray_id,
            read_at=d.reading.read_at,
            status="rejected" if d.row.outcome == Outcome.REJECTED else "applied",
            outcome=d.row.outcome,
            quantity=d.row.quantity,
            move_id=d.row.move_id,
            code=getattr(d.row, "_code", ""),
            reason=d.row.reason,
            position_ignored=d.row.position_ignored,
        )
    for index, result in results.items():
        if result.status == "duplicate_of":
            first = results[result.move_id]
            results[index] = ReadingResult(
                index=index, tray_id=result.tray_id, read_at=result.read_at,
                status="duplicate" if first.status != "rejected" else "rejected",
                outcome=first.outcome, quantity=first.quantity, move_id=first.move_id,
                code=first.code, reason=first.reason,
            )
    return ApplyResult(results=[results[i] for i in range(len(readings))])


READING_COLUMNS = [
    "cabinet_id", "tray_id", "tray_code", "weight_g", "position", "position_ignored", "read_at", "received_at",
    "via", "outcome", "quantity", "reason", "move_id",
]


def _readings_insert(rows: list[WeightReading]) -> None:
    """Insert the batch's readings and set their ids. On PostgreSQL one
    INSERT ... SELECT FROM unnest(arrays): one parameter per column instead
    of one per value (the ORM's bulk_create was a tenth of a 500-reading push)."""
    if connection.vendor != "postgresql":
        WeightReading.objects.bulk_create(rows)
        return
    fields = [WeightReading._meta.get_field(name) for name in READING_COLUMNS]
    arrays = [[getattr(row, f.attname) for row in rows] for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    types = ", ".join(f"%s::{_pg_type(f)}[]" for f in fields)
    names = ", ".join(f"c{i}" for i in range(len(fields)))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(WeightReading._meta.db_table)} ({columns}) "
        f"SELECT {names} FROM unnest({types}) WITH ORDINALITY AS v({names}, n) ORDER BY n RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        ids = [pk for (pk,) in cursor.fetchall()]
    # INSERT ... SELECT ... ORDER BY inserts (and returns) in that order.
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False


def _pg_type(field) -> str:
    """The array element type of a column: its type without length or precision."""
    return field.rel_db_type(connection) if field.is_relation else field.db_type(connection).split("(")[0]


def _trays_write(trays: list[Tray]) -> None:
    """Write the trays' reading state in one UPDATE: on PostgreSQL from
    unnest(arrays), elsewhere from VALUES rows. Django's bulk_update builds a
    CASE per field and row, which cost more than the whole ledger post for a
    batch of 500 (see bench/RESULTS.md)."""
    if not trays:
        return
    fields = [Tray._meta.get_field(name) for name in TRAY_FIELDS]
    table = connection.ops.quote_name(Tray._meta.db_table)
    columns = [connection.ops.quote_name(f.column) for f in fields]
    if connection.vendor == "postgresql":
        trays = sorted(trays, key=lambda t: t.pk)
        arrays = [[t.pk for t in trays], *([getattr(t, f.attname) for t in trays] for f in fields)]
        types = ", ".join(["%s::bigint[]", *(f"%s::{_pg_type(f)}[]" for f in fields)])
        names = ", ".join(["id", *(f"c{i}" for i in range(len(fields)))])
        sets = ", ".join(f"{column} = v.c{i}" for i, column in enumerate(columns))
        sql = f"UPDATE {table} AS t SET {sets} FROM unnest({types}) AS v({names}) WHERE t.id = v.id"
        with connection.cursor() as cursor:
            cursor.execute(sql, arrays)
        return
    # SQLite allows 32,766 parameters a statement; keep well below.
    step = 2000 // (len(fields) + 1)
    for start in range(0, len(trays), step):
        chunk = sorted(trays[start:start + step], key=lambda t: t.pk)
        params: list = []
        for tray in chunk:
            params.append(tray.pk)
            params += [f.get_db_prep_save(getattr(tray, f.attname), connection) for f in fields]
        row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
        sets = ", ".join(f"{column} = v.column{i + 2}" for i, column in enumerate(columns))
        sql = (
            f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row] * len(chunk))}) AS v "
            f"WHERE {table}.id = v.column1"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _received_before(
    cabinet: WeighingCabinet, readings: list[ReadingIn]
) -> tuple[dict[tuple[str, datetime], dict], set[tuple[str, datetime, str]]]:
    """Readings of this batch received before (one query): those accepted,
    with their result, and (tray, read time, reason) of those rejected."""
    if not readings:
        return {}, set()
    wanted = {(r.tray_id, r.read_at) for r in readings}
    rows = (
        WeightReading.objects.filter(
            cabinet=cabinet,
            tray_code__in={r.tray_id for r in readings},
            read_at__gte=min(r.read_at for r in readings),
            read_at__lte=max(r.read_at for r in readings),
        )
        .order_by()  # the model's ordering would only add a sort
        .values("tray_code", "read_at", "outcome", "quantity", "move_id", "reason")
    )
    accepted, rejected = {}, set()
    for row in rows:
        key = (row["tray_code"], row["read_at"])
        if key not in wanted:
            continue
        if row["outcome"] == Outcome.REJECTED:
            rejected.add((*key, row["reason"]))
        else:
            accepted[key] = row
    return accepted, rejected


def _reject(row: WeightReading, code: str, reason: str) -> WeightReading:
    row.outcome = Outcome.REJECTED
    row.reason = reason[:200]
    row._code = code
    return row


def _decide(
    cabinet: WeighingCabinet, tray: Tray | None, index: int, reading: ReadingIn, via: str, now: datetime
) -> _Decision:
    """Apply the rules of docs/cabinets.md to one reading, updating `tray` in memory."""
    row = WeightReading(
        cabinet_id=cabinet.pk,
        tray_id=tray.pk if tray is not None else None,
        tray_code=reading.tray_id,
        weight_g=reading.weight_g,
        position=reading.position or "",
        read_at=reading.read_at,
        received_at=now,
        via=via,
    )
    decision = _Decision(index=index, reading=reading, row=row, tray=tray)
    weight = reading.weight_g
    if tray is None:
        _reject(row, "unknown_tray", f"unknown tray {reading.tray_id!r} in cabinet {cabinet.code}")
        return decision
    article = tray.article
    if article is None:
        _reject(row, "no_article", f"tray {tray.tray_id} has no article linked")
        return decision
    if article.unit_weight_g is None:
        _reject(row, "no_unit_weight", f"article {article.sku} has no unit weight in the article file")
        return decision
    if weight < 0:
        _reject(row, "negative_weight", f"weight {weight} g is negative")
        return decision
    if weight > cabinet.max_weight_g:
        _reject(row, "absurd_weight", f"weight {weight} g is above the cell capacity of {_n(cabinet.max_weight_g)} g")
        return decision
    if reading.read_at > now + FUTURE_SKEW:
        _reject(row, "future_read_at", f"read time {reading.read_at.isoformat()} is in the future")
        return decision

    units = (weight - tray.tare_g) / article.unit_weight_g
    if units < -cabinet.tolerance:
        _reject(
            row, "below_tare", f"weight {weight} g is below the tray's tare of {_n(tray.tare_g)} g (tray lifted?)"
        )
        return decision
    count = max(units.to_integral_value(rounding=ROUND_HALF_UP), Decimal(0))
    if not quantity_within(count):
        # A tiny unit weight can turn a plausible weight into a count no level may hold.
        _reject(row, "out_of_bounds", f"weight {weight} g is {count} units of {article.sku}: "
                f"{quantity_problem(count)}; check the article's unit weight")
        return decision
    row.quantity = count

    if tray.last_read_at is not None and reading.read_at < tray.last_read_at:
        row.outcome = Outcome.STALE
        row.reason = f"older than the tray's last reading at {tray.last_read_at.isoformat()}"
        return decision

    # Position: taken while the tray is empty; once filled it is kept, so
    # filled trays can be swapped around without moving their article.
    if reading.position and reading.position != tray.position:
        if tray.state == Tray.State.EMPTY:
            tray.position = reading.position
        else:
            row.position_ignored = True
    tray.weight_g = weight
    tray.last_read_at = reading.read_at

    if abs(units - count) > cabinet.tolerance:
        if tray.held_quantity != count:
            tray.held_quantity = count
            row.outcome = Outcome.HELD
            row.reason = (
                f"{units.quantize(Decimal('0.01'))} units is not within {_n(cabinet.tolerance)} of a whole number; "
                "held until a reading repeats it"
            )
            return decision
        confirmed = True
    else:
        confirmed = False
    tray.held_quantity = None

    previous = tray.quantity
    if previous is not None:
        difference = abs(count - previous)
        if difference == 0:
            row.outcome = Outcome.UNCHANGED
            return decision
        margin = quantity_margin(cabinet=cabinet, quantity=previous)
        if difference <= margin:
            row.outcome = Outcome.UNCHANGED
            row.reason = f"{_n(count)} is within the hysteresis margin of {_n(margin)} around {_n(previous)}"
            return decision

    row.outcome = Outcome.POSTED
    if confirmed:
        row.reason = "ambiguous reading confirmed by a repeat"
    decision.previous_quantity = previous
    decision.previous_since = tray.counted_at
    tray.quantity = count
    tray.quantity_since = reading.read_at
    tray.counted_at = now
    tray.state = Tray.State.FILLED if count > 0 else Tray.State.EMPTY
    return decision


def _count_moves(
    cabinet: WeighingCabinet, decisions: list[_Decision], trays: dict[str, Tray], before: dict[int, Decimal | None]
) -> list[MoveSpec]:
    """One count move per posted reading. An article may lie in several trays
    of the cabinet, so the counted quantity is the sum over all its trays."""
    posting = [d for d in decisions if d.row.outcome == Outcome.POSTED]
    if not posting:
        return []
    articles = {d.tray.article_id for d in posting}
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for article_id, quantity in (
        Tray.objects.filter(cabinet=cabinet, article_id__in=articles, quantity__isnull=False)
        .exclude(pk__in=before.keys())
        .order_by()  # Tray's default ordering joins the cabinet for its code
        .values_list("article_id", "quantity")
    ):
        totals[article_id] += quantity
    # Trays of this batch count with their quantities from before the batch.
    current = {t.pk: before[t.pk] or Decimal(0) for t in trays.values() if t.article_id in articles}
    for tray in trays.values():
        if tray.pk in current:
            totals[tray.article_id] += current[tray.pk]

    moves = []
    for d in sorted(posting, key=lambda d: (d.reading.read_at, d.index)):
        article_id = d.tray.article_id
        totals[article_id] += d.row.quantity - current[d.tray.pk]
        current[d.tray.pk] = d.row.quantity
        d.move_index = len(moves)
        moves.append(
            MoveSpec(
                kind=StockMove.Kind.COUNT,
                idempotency_key=reading_key(
                    cabinet_code=cabinet.code, tray_id=d.reading.tray_id, read_at=d.reading.read_at
                ),
                counted=totals[article_id],
                article_id=article_id,
                location_id=cabinet.location_id,
                reference=f"{cabinet.code}/{d.reading.tray_id}"[:120],
                reason=f"tray {d.reading.tray_id}: {d.row.weight_g} g = {_n(d.row.quantity)} units",
            )
        )
    return moves


def _shrink_alerts(cabinet: WeighingCabinet, posted: list[_Decision]) -> None:
    """A drop larger than the sales and web orders recorded at the cabinet's
    location for that article since the reading that set the previous
    quantity is a shrink alert (one query for all drops of the batch). Both
    ends of the window are our clock (when that reading arrived, and now),
    never the cabinet's, so a cabinet clock that is off cannot hide sales."""
    drops = [
        d for d in posted
        if d.previous_quantity is not None and d.row.quantity < d.previous_quantity and d.previous_since is not None
    ]
    if not drops:
        return
    sales = list(
        StockMove.objects.filter(
            location_id=cabinet.location_id,
            article_id__in={d.tray.article_id for d in drops},
            kind__in=[StockMove.Kind.SALE, StockMove.Kind.ORDER],
            created_at__gt=min(d.previous_since for d in drops),
        ).order_by().values_list("article_id", "created_at", "quantity")
    )
    alerts = []
    for d in drops:
        sold = -sum(
            (q for a, at, q in sales if a == d.tray.article_id and d.previous_since < at),
            Decimal(0),
        )
        dropped = d.previous_quantity - d.row.quantity
        if dropped > sold:
            alerts.append(
                ShrinkAlert(
                    tray=d.tray, reading=d.row, previous_quantity=d.previous_quantity,
                    new_quantity=d.row.quantity, sold=sold, unexplained=dropped - sold,
                )
            )
    ShrinkAlert.objects.bulk_create(alerts)
    if alerts:
        logger.warning(
            "shrink on cabinet %s: %d tray(s) lost more than was sold (%s)", cabinet.code, len(alerts),
            ", ".join(f"{a.tray.tray_id}: {_n(a.unexplained)}" for a in alerts[:10]),
        )


def _suggestions(cabinet: WeighingCabinet, trays: list[Tray]) -> None:
    """One open suggestion per article and cabinet location while a tray of it
    is below its threshold (not one per reading); closed when refilled."""
    opening = [t for t in trays if t.below_threshold and not t.suggesting]
    refilled = [t for t in trays if t.suggesting and not t.below_threshold]
    for tray in opening:
        target = tray.capacity if tray.capacity is not None else tray.threshold * 2
        suggestion_open(
            article_id=tray.article_id,
            location_id=cabinet.location_id,
            source=ReorderSuggestion.Source.TRAY,
            quantity_on_hand=tray.quantity,
            trigger_level=tray.threshold,
            suggested_quantity=target - tray.quantity,
            source_ref=f"{cabinet.code}/{tray.tray_id}"[:120],
        )
        tray.suggesting = True
    if not refilled:
        return
    for tray in refilled:
        tray.suggesting = False
    # Another tray of the same article still low keeps the suggestion open.
    articles = {t.article_id for t in refilled}
    still_low = {t.article_id for t in trays if t.suggesting} | set(
        Tray.objects.filter(cabinet=cabinet, article_id__in=articles, suggesting=True)
        .exclude(pk__in={t.pk for t in trays})
        .order_by()
        .values_list("article_id", flat=True)
    )
    for article_id in articles - still_low:
        suggestion_close(
            article_id=article_id, location_id=cabinet.location_id, source=ReorderSuggestion.Source.TRAY
        )


def readings_of_tray(*, tray: Tray, limit: int = 200) -> list[WeightReading]:
    """The tray's newest accepted readings, oldest first (for its weight chart)."""
    rows = list(
        WeightReading.objects.filter(tray=tray)
        .exclude(outcome=Outcome.REJECTED)
        .filter(~Q(outcome=Outcome.STALE))
        .order_by("-read_at")[:limit]
    )
    rows.reverse()
    return rows


def readings_prune(*, before: datetime, chunk: int = 5000, progress=None) -> int:
    """Delete readings read before `before`, in chunks (short transactions),
    keeping any a shrink alert points to. Their moves stay in the ledger. A
    pruned reading sent again is older than its tray's last reading, so it is
    recorded as stale and posts nothing. Returns how many were deleted."""
    deleted = 0
    while True:
        ids = list(
            WeightReading.objects.filter(read_at__lt=before, shrink_alert__isnull=True)
            .order_by("read_at")
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += WeightReading.objects.filter(pk__in=ids).delete()[0]
        if progress:
            progress(deleted)
