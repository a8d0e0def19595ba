"""The daily sales rollup: (day, location, article) -> quantity, revenue,
lines in `SalesDay`, and (day, location) -> receipts, quantity, revenue in
`ReceiptsDay`. The report queries read whole past days from it (see
backoffice/selectors/reports.py).

A day is always re-rolled whole, from the receipt lines, in one
transaction: delete its rows, then one INSERT ... SELECT ... GROUP BY.
So a run is idempotent (running it twice gives the same rows) and a
report never sees half a day.

The incremental run (`sales_rollup_refresh`, scheduled every few
minutes) re-rolls every day that has a receipt recorded since the previous
run started, less `SAFETY_MARGIN` (a receipt's `recorded_at` is taken
before its transaction commits; the margin covers that gap), then marks
the rollup complete through yesterday. Backdated receipts (a register
syncing days late) are found by `recorded_at` too, so their day is
re-rolled. Runs are serialised by a row lock on the state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from backoffice.models import ReceiptsDay, RollupState, SalesDay, SalesMonth, SalesToMonth
from pos.models import Receipt, ReceiptLine
from posinv.exceptions import InvalidInput, Problem

STATE = "sales"
SAFETY_MARGIN = timedelta(minutes=10)
REVENUE_SQL = F("quantity") * F("unit_price") - F("discount")


@dataclass(frozen=True)
class RollupResult:
    days: int
    complete_through: date | None
    rebuilt: bool


def _start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _insert_select(model, columns: list[str], queryset) -> None:
    """INSERT INTO model (columns) <the queryset's SELECT>: the aggregate is
    computed and stored by the database, no row passes through Python."""
    sql, params = queryset.query.sql_with_params()
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names}) {sql}", params)


def _roll_range(first: date, last: date, months: bool = True) -> None:
    """Re-roll the days first..last (both included) and, unless `months` is
    false, their months. Caller holds a transaction."""
    start, end = _start(first), _start(last + timedelta(days=1))
    SalesDay.objects.filter(day__gte=first, day__lte=last).delete()
    ReceiptsDay.objects.filter(day__gte=first, day__lte=last).delete()
    # Every selected column is an annotation, in the order of the INSERT's
    # columns (Django 5.2 keeps the order given to values()).
    lines = (
        ReceiptLine.objects.filter(receipt__created_at__gte=start, receipt__created_at__lt=end)
        .annotate(
            r_day=TruncDate("receipt__created_at"),
            r_location=F("receipt__register__location_id"),
            r_article=F("article_id"),
        )
        .values("r_day", "r_location", "r_article")
        .annotate(r_quantity=Sum("quantity"), r_revenue=Sum(REVENUE_SQL), r_lines=Count("pk"))
        .values_list("r_day", "r_location", "r_article", "r_quantity", "r_revenue", "r_lines")
        .order_by()
    )
    _insert_select(SalesDay, ["day", "location", "article", "quantity", "revenue", "lines"], lines)
    receipts = (
        Receipt.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(r_day=TruncDate("created_at"), r_location=F("register__location_id"))
        .values("r_day", "r_location")
        .annotate(r_receipts=Count("pk"))
        .values_list("r_day", "r_location", "r_receipts")
        .order_by()
    )
    _insert_select(ReceiptsDay, ["day", "location", "receipts"], receipts)
    # Quantity and revenue per (day, location) from the article rows just
    # written (a few thousand rows, not the lines again).
    totals = {
        (row["day"], row["location_id"]): row
        for row in SalesDay.objects.filter(day__gte=first, day__lte=last)
        .values("day", "location_id")
        .annotate(q=Sum("quantity"), r=Sum("revenue"), n=Sum("lines"))
        .order_by()
    }
    days = ReceiptsDay.objects.filter(day__gte=first, day__lte=last)
    for row in days:
        found = totals.get((row.day, row.location_id))
        row.quantity = found["q"] if found else 0
        row.revenue = found["r"] if found else 0
        row.lines = found["n"] if found else 0
    ReceiptsDay.objects.bulk_update(days, ["quantity", "revenue", "lines"], batch_size=2000)
    if months:
        _roll_months(first, last)


def month_end(month: date) -> date:
    """The last day of the month starting on `month`."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _roll_months(first: date, last: date, cascade: bool = True) -> None:
    """Re-aggregate the months holding first..last from their day rows,
    then the running totals from the first of them on (`cascade`: through
    the latest month; else only these months, the rebuild goes in order)."""
    m_first, m_last = first.replace(day=1), last.replace(day=1)
    SalesMonth.objects.filter(month__gte=m_first, month__lte=m_last).delete()
    days = SalesDay.objects.filter(day__gte=m_first, day__lte=month_end(m_last), article__isnull=False)
    per_location = (
        days.annotate(r_month=TruncMonth("day"), r_location=F("location_id"), r_article=F("article_id"))
        .values("r_month", "r_location", "r_article")
        .annotate(r_quantity=Sum("quantity"), r_revenue=Sum("revenue"))
        .values_list("r_month", "r_location", "r_article", "r_quantity", "r_revenue")
        .order_by()
    )
    _insert_select(SalesMonth, ["month", "location", "article", "quantity", "revenue"], per_location)
    everywhere = (
        days.annotate(r_month=TruncMonth("day"), r_article=F("article_id"))
        .values("r_month", "r_article")
        .annotate(r_quantity=Sum("quantity"), r_revenue=Sum("revenue"))
        .values_list("r_month", "r_article", "r_quantity", "r_revenue")
        .order_by()
    )
    _insert_select(SalesMonth, ["month", "article", "quantity", "revenue"], everywhere)
    through = m_last
    if cascade:
        latest = SalesMonth.objects.aggregate(m=Max("month"))["m"]
        through = max(m_last, latest) if latest else m_last
    _roll_running_totals(m_first, through)


def _roll_running_totals(first: date, last: date) -> None:
    """SalesToMonth for the months first..last: the previous month's
    running total plus the month's own units, per (location, article)."""
    SalesToMonth.objects.filter(month__gte=first, month__lte=last).delete()
    qn = connection.ops.quote_name
    adapt = connection.ops.adapt_datefield_value
    to_month, months = qn(SalesToMonth._meta.db_table), qn(SalesMonth._meta.db_table)
    month = first
    while month <= last:
        before = (month - timedelta(days=1)).replace(day=1)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {to_month} (month, location_id, article_id, quantity) "
                f"SELECT %s, location_id, article_id, SUM(quantity) FROM ("
                f"SELECT location_id, article_id, quantity FROM {to_month} WHERE month = %s "
                f"UNION ALL SELECT location_id, article_id, quantity FROM {months} "
                f"WHERE month = %s AND location_id IS NOT NULL) t GROUP BY location_id, article_id",
                [adapt(month), adapt(before), adapt(month)],
            )
        month = month_end(month) + timedelta(days=1)


def _ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into (first, last) ranges."""
    out: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if out and out[-1][1] + timedelta(days=1) == day:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _state_locked() -> RollupState:
    RollupState.objects.get_or_create(name=STATE)
    return RollupState.objects.select_for_update().get(name=STATE)


def sales_rollup_days(*, days: Iterable[date]) -> int:
    """Re-roll the given days whole (idempotent); returns how many."""
    ranges = _ranges(days)
    with transaction.atomic():
        _state_locked()
        for first, last in ranges:
            _roll_range(first, last)
    return sum((last - first).days + 1 for first, last in ranges)


def sales_rollup_refresh(*, now: datetime | None = None) -> RollupResult:
    """The incremental run: re-roll the days touched by receipts recorded
    since the previous run (less the safety margin) and mark the rollup
    complete through yesterday. Without a previous run it rebuilds."""
    now = now or timezone.now()
    with transaction.atomic():
        state = _state_locked()
        if state.rolled_at is not None:
            touched = (
                Receipt.objects.filter(recorded_at__gte=state.rolled_at - SAFETY_MARGIN)
                .annotate(r_day=TruncDate("created_at"))
                .values_list("r_day", flat=True)
                .distinct()
                .order_by()
            )
            ranges = _ranges(touched)
            for first, last in ranges:
                _roll_range(first, last)
            days = sum((last - first).days + 1 for first, last in ranges)
            _state_mark(state, now=now, days=days)
            return RollupResult(days=days, complete_through=state.complete_through, rebuilt=False)
    return sales_rollup_rebuild(now=now)


def _state_mark(state: RollupState, *, now: datetime, days: int) -> None:
    state.rolled_at = now
    state.complete_through = timezone.localdate(now) - timedelta(days=1)
    state.days_rolled = days
    state.save()


def sales_rollup_rebuild(
    *, now: datetime | None = None, chunk_days: int = 7, progress: Callable[[int, int], None] | None = None
) -> RollupResult:
    """Recreate the whole rollup from the receipts, `chunk_days` days per
    transaction (reports keep reading the old rows of a chunk until its
    new rows commit). `progress(done, total)` is called after each chunk."""
    if chunk_days < 1:
        raise InvalidInput([Problem(field="chunk_days", reason="must be at least 1")])
    now = now or timezone.now()
    span = Receipt.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    today = timezone.localdate(now)
    if span["first"] is None:
        first = last = today
    else:
        first = timezone.localdate(span["first"])
        last = max(timezone.localdate(span["last"]), today)
    total = (last - first).days + 1
    done = 0
    day = first
    while day <= last:
        chunk_last = min(day + timedelta(days=chunk_days - 1), last)
        with transaction.atomic():
            _state_locked()
            if day == first:
                SalesDay.objects.filter(day__lt=first).delete()
                SalesMonth.objects.filter(month__lt=first.replace(day=1)).delete()
                SalesToMonth.objects.filter(month__lt=first.replace(day=1)).delete()
                ReceiptsDay.objects.filter(day__lt=first).delete()
            if chunk_last == last:
                SalesDay.objects.filter(day__gt=last).delete()
                SalesMonth.objects.filter(month__gt=last).delete()
                SalesToMonth.objects.filter(month__gt=last).delete()
                ReceiptsDay.objects.filter(day__gt=last).delete()
            # A month is aggregated once, by the chunk holding its last day.
            _roll_range(day, chunk_last, months=False)
            month = day.replace(day=1)
            while month <= chunk_last:
                if month_end(month) <= chunk_last or chunk_last == last:
                    _roll_months(month, month, cascade=False)
                month = month_end(month) + timedelta(days=1)
        done += (chunk_last - day).days + 1
        if progress:
            progress(done, total)
        day = chunk_last + timedelta(days=1)
    with transaction.atomic():
        state = _state_locked()
        _state_mark(state, now=now, days=total)
    return RollupResult(days=total, complete_through=state.complete_through, rebuilt=True)
