"""The report queries. Every figure is aggregated in the database (GROUP BY
over receipt lines, joined with the ledger's levels); Python only shapes
the few result rows for a page or a CSV file.

Sales are receipt lines (net of returns: a return line is negative) dated
by their receipt and placed at their register's location. Revenue is
quantity x unit price - discount. Cost is the preferred supplier article's
unit cost, so margin is shown only where that cost is known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import wraps

from django.db import connection, transaction
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Max, Min, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek
from django.utils import timezone

from backoffice.models import ReceiptsDay, RollupState, SalesDay, SalesMonth, SalesToMonth, SupplierArticle
from pos.models import CashRegister, Receipt, ReceiptLine
from posinv.exceptions import InvalidInput, Problem
from posinv.models import Article, Location, StockLevel

MONEY_FIELD = DecimalField(max_digits=18, decimal_places=4)
REVENUE = ExpressionWrapper(F("quantity") * F("unit_price") - F("discount"), output_field=MONEY_FIELD)
GRANULARITIES = {"day": TruncDate, "week": TruncWeek, "month": TruncMonth}
CENT = Decimal("0.01")
QTY = Decimal("0.001")


@dataclass(frozen=True)
class Window:
    """A report's days, both ends included, and optionally one location."""

    date_from: date
    date_to: date
    location_id: int | None = None

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.date_from, time.min), timezone.get_current_timezone())

    @property
    def end(self) -> datetime:
        return timezone.make_aware(
            datetime.combine(self.date_to + timedelta(days=1), time.min), timezone.get_current_timezone()
        )

    def previous(self) -> Window:
        """The same number of days right before this window."""
        return Window(
            date_from=self.date_from - timedelta(days=self.days),
            date_to=self.date_from - timedelta(days=1),
            location_id=self.location_id,
        )


def window_make(*, date_from: date, date_to: date, location_id: int | None = None) -> Window:
    """A validated window (at most about 3 years, from before to)."""
    if date_to < date_from:
        raise InvalidInput([Problem(field="date_to", reason="must not be before date_from")])
    if (date_to - date_from).days > 3 * 366:
        raise InvalidInput([Problem(field="date_from", reason="a report spans at most 3 years")])
    return Window(date_from=date_from, date_to=date_to, location_id=location_id)


@dataclass(frozen=True)
class _Bounds:
    """The lowest and highest receipt id dated in the window, and whether
    every receipt between them is in the window (`exact`)."""

    lo: int
    hi: int
    exact: bool


def _receipt_bounds(window: Window) -> _Bounds:
    """Receipts are recorded roughly in time order, so the window's receipt
    ids form a narrow range: bounding the lines by it lets the database read
    them through the receipt_id index instead of every line. It never drops
    a line (each line of a receipt in the window is in the range). When no
    receipt of another date lies inside the range (`exact`, the usual case
    for a past window), the range alone selects the window's lines and the
    join to the receipts' dates can be left out."""
    found = Receipt.objects.filter(created_at__gte=window.start, created_at__lt=window.end).aggregate(
        lo=Min("pk"), hi=Max("pk"), n=Count("pk")
    )
    if found["lo"] is None:
        return _Bounds(lo=0, hi=-1, exact=True)
    in_range = Receipt.objects.filter(pk__gte=found["lo"], pk__lte=found["hi"]).count()
    return _Bounds(lo=found["lo"], hi=found["hi"], exact=in_range == found["n"])


def _sales_lines(window: Window) -> QuerySet:
    bounds = _receipt_bounds(window)
    lines = ReceiptLine.objects.filter(receipt_id__gte=bounds.lo, receipt_id__lte=bounds.hi)
    if not bounds.exact:
        lines = lines.filter(receipt__created_at__gte=window.start, receipt__created_at__lt=window.end)
    if window.location_id is not None:
        lines = lines.filter(receipt__register__location_id=window.location_id)
    return lines


def consistent(func):
    """Run a report in one REPEATABLE READ transaction on PostgreSQL, so its
    queries (bounds, sums, counts) see one snapshot: a receipt committed
    between them cannot be half counted."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return func(*args, **kwargs)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                # A year's grouping of (article, location) pairs spills to
                # disk with the default 4 MB; for this transaction only.
                cursor.execute("SET LOCAL work_mem = '64MB'")
            return func(*args, **kwargs)

    return wrapper


def _split(window: Window) -> tuple[Window | None, Window | None]:
    """The window's days read from the daily rollup (up to the day it is
    complete through) and the rest read from the raw lines (today, and
    any day the rollup has not reached yet): (rolled, raw), either None."""
    through = RollupState.objects.filter(name="sales").values_list("complete_through", flat=True).first()
    if through is None or through < window.date_from:
        return None, window
    if through >= window.date_to:
        return window, None
    return (
        Window(date_from=window.date_from, date_to=through, location_id=window.location_id),
        Window(date_from=through + timedelta(days=1), date_to=window.date_to, location_id=window.location_id),
    )


def _rolled_days(window: Window) -> QuerySet:
    days = ReceiptsDay.objects.filter(day__gte=window.date_from, day__lte=window.date_to)
    if window.location_id is not None:
        days = days.filter(location_id=window.location_id)
    return days


def _receipts(window: Window) -> QuerySet:
    receipts = Receipt.objects.filter(created_at__gte=window.start, created_at__lt=window.end)
    if window.location_id is not None:
        receipts = receipts.filter(register__location_id=window.location_id)
    return receipts


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


def _qty(value) -> Decimal:
    return Decimal(value or 0).quantize(QTY)


@consistent
def sales_by_period(*, window: Window, granularity: str = "day") -> list[dict]:
    """Quantity, revenue and receipts per period and location."""
    if granularity not in GRANULARITIES:
        raise InvalidInput([Problem(field="granularity", reason=f"expected one of {', '.join(GRANULARITIES)}")])
    rolled, raw = _split(window)
    # (period, location code) -> [quantity, revenue, receipts, has lines]
    merged: dict[tuple[date, str], list] = {}
    if rolled is not None:
        period = F("day") if granularity == "day" else GRANULARITIES[granularity]("day")
        for row in (
            _rolled_days(rolled)
            .annotate(period=period)
            .values("period", "location__code")
            .annotate(units=Sum("quantity"), revenue=Sum("revenue"), n=Sum("receipts"), lines=Sum("lines"))
            .order_by()
        ):
            merged[(_day(row["period"]), row["location__code"])] = [
                row["units"],
                row["revenue"],
                row["n"],
                row["lines"] > 0,
            ]
    if raw is not None:
        for key, (units, revenue, n, has_lines) in _raw_by_period(raw, granularity).items():
            found = merged.setdefault(key, [0, 0, 0, False])
            found[0] += units
            found[1] += revenue
            found[2] += n
            found[3] = found[3] or has_lines
    return [
        {
            "period": period,
            "location": code,
            "quantity": _qty(units),
            "revenue": _money(revenue),
            "receipts": n,
        }
        for (period, code), (units, revenue, n, has_lines) in sorted(merged.items())
        if has_lines
    ]


def _raw_by_period(window: Window, granularity: str) -> dict[tuple[date, str], list]:
    """Sales per (period, location code) from the receipt lines themselves."""
    trunc = GRANULARITIES[granularity]
    rows = (
        _sales_lines(window)
        .annotate(period=trunc("receipt__created_at"))
        .values("period", "receipt__register__location__code")
        .annotate(revenue=Sum(REVENUE), units=Sum("quantity"))
        .order_by()
    )
    # Receipts are counted on their own table: a COUNT(DISTINCT) over the
    # lines would sort every line of the window.
    out: dict[tuple[date, str], list] = {}
    for row in (
        _receipts(window)
        .annotate(period=trunc("created_at"))
        .values("period", "register__location__code")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        out[(_day(row["period"]), row["register__location__code"])] = [0, 0, row["n"], False]
    for row in rows:
        found = out.setdefault((_day(row["period"]), row["receipt__register__location__code"]), [0, 0, 0, False])
        found[0], found[1], found[3] = row["units"] or 0, row["revenue"] or 0, True
    return out


def _day(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def _totals_by_location(window: Window) -> dict[str, dict]:
    rolled, raw = _split(window)
    merged: dict[str, list] = {}
    if rolled is not None:
        for row in (
            _rolled_days(rolled)
            .values("location__code")
            .annotate(units=Sum("quantity"), revenue=Sum("revenue"), n=Sum("receipts"), lines=Sum("lines"))
            .order_by()
        ):
            merged[row["location__code"]] = [row["units"], row["revenue"], row["n"], row["lines"] > 0]
    if raw is not None:
        rows = (
            _sales_lines(raw)
            .values("receipt__register__location__code")
            .annotate(revenue=Sum(REVENUE), units=Sum("quantity"))
            .order_by()
        )
        counts = dict(_receipts(raw).values_list("register__location__code").annotate(n=Count("pk")).order_by())
        for code, n in counts.items():
            merged.setdefault(code, [0, 0, 0, False])[2] += n
        for row in rows:
            found = merged.setdefault(row["receipt__register__location__code"], [0, 0, 0, False])
            found[0] += row["units"] or 0
            found[1] += row["revenue"] or 0
            found[3] = True
    return {
        code: {"quantity": _qty(units), "revenue": _money(revenue), "receipts": n}
        for code, (units, revenue, n, has_lines) in merged.items()
        if has_lines
    }


def _change(now: Decimal, before: Decimal) -> Decimal | None:
    if not before:
        return None
    return ((now - before) / before * 100).quantize(Decimal("0.1"))


@consistent
def sales_comparison(*, window: Window) -> list[dict]:
    """Per location and in total: revenue, quantity and receipts in the
    window and in the previous window of the same length, with the change
    in percent (None when the previous period sold nothing)."""
    now = _totals_by_location(window)
    before = _totals_by_location(window.previous())
    zero = {"quantity": Decimal("0.000"), "revenue": Decimal("0.00"), "receipts": 0}
    rows = []
    for code in sorted(now.keys() | before.keys()):
        current, previous = now.get(code, zero), before.get(code, zero)
        rows.append(_comparison_row(code, current, previous))
    total_now = {key: sum((r[key] for r in now.values()), zero[key]) for key in zero}
    total_before = {key: sum((r[key] for r in before.values()), zero[key]) for key in zero}
    rows.append(_comparison_row("all locations", total_now, total_before))
    return rows


def _comparison_row(label: str, current: dict, previous: dict) -> dict:
    return {
        "location": label,
        "revenue": current["revenue"],
        "previous_revenue": previous["revenue"],
        "revenue_change_pct": _change(current["revenue"], previous["revenue"]),
        "quantity": current["quantity"],
        "previous_quantity": previous["quantity"],
        "receipts": current["receipts"],
        "previous_receipts": previous["receipts"],
    }


@consistent
def articles_ranked(*, window: Window, bottom: bool = False, limit: int = 20) -> list[dict]:
    """Best sellers by revenue, or (`bottom`) the slowest movers: articles
    that are in stock somewhere, ranked by what they sold in the window
    (nothing counts as zero)."""
    if not bottom:
        # Summed per article id first (the CTE), names joined for the top rows only.
        t = _tables()
        sold, params = _sold_cte(window, by_location=False)
        rows = _fetch(
            f"WITH {sold} SELECT a.sku, a.name, a.category, s.quantity, s.revenue "
            f'FROM sold s JOIN "{t["article"]}" a ON a.id = s.article_id '
            f"ORDER BY s.revenue DESC, a.sku ASC LIMIT %s",
            [*params, limit],
        )
        return [
            {
                "sku": row["sku"],
                "name": row["name"],
                "category": row["category"],
                "quantity": _qty(row["quantity"]),
                "revenue": _money(row["revenue"]),
            }
            for row in rows
        ]
    return _slow_movers(window, limit)


def _tables() -> dict[str, str]:
    return {
        "line": ReceiptLine._meta.db_table,
        "receipt": Receipt._meta.db_table,
        "register": CashRegister._meta.db_table,
        "level": StockLevel._meta.db_table,
        "article": Article._meta.db_table,
        "location": Location._meta.db_table,
        "sa": SupplierArticle._meta.db_table,
    }


def _sold_cte(window: Window, by_location: bool, revenue: bool = True) -> tuple[str, list]:
    """SQL of a CTE `sold(article_id[, location_id], quantity[, revenue])`:
    whole past days from the daily rollup, the rest from the lines
    (`revenue` false: not summed, for the pages that show no money)."""
    rolled, raw = _split(window)
    location_col = ", location_id" if by_location else ""
    parts, params = [], []
    if rolled is not None:
        sql, part_params = _rolled_select(rolled, by_location, revenue)
        parts.append(sql)
        params += part_params
    if raw is not None:
        sql, part_params = _raw_select(raw, by_location)
        parts.append(sql)
        params += part_params
    union = " UNION ALL ".join(parts)
    sql = (
        f"sold AS (SELECT article_id{location_col}, SUM(quantity) AS quantity"
        f"{', SUM(revenue) AS revenue' if revenue else ''} "
        f"FROM ({union}) u GROUP BY article_id{location_col})"
    )
    return sql, params


def _whole_months(window: Window) -> tuple[date, date] | None:
    """The first and last calendar month lying wholly inside the window."""
    first = window.date_from if window.date_from.day == 1 else _next_month(window.date_from)
    last = _next_month(window.date_to)
    if window.date_to + timedelta(days=1) != last:
        last = window.date_to.replace(day=1)
    last -= timedelta(days=1)  # the last day of the last whole month
    if last < first:
        return None
    return first, last.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _rolled_select(window: Window, by_location: bool, revenue: bool = True) -> tuple[str, list]:
    """Whole months from SalesMonth, the days before and after them from
    SalesDay: rows of (article[, location], quantity, revenue)."""
    location_col = ", location_id" if by_location else ""
    adapt = connection.ops.adapt_datefield_value
    where_location, location_params = "", []
    if window.location_id is not None:
        where_location, location_params = " AND location_id = %s", [window.location_id]
    months = _whole_months(window)
    day_ranges = (
        [(window.date_from, window.date_to)]
        if months is None
        else [
            (window.date_from, months[0] - timedelta(days=1)),
            (_next_month(months[1]), window.date_to),
        ]
    )
    day_ranges = [(a, b) for a, b in day_ranges if a <= b]
    parts, params = [], []
    if day_ranges:
        ranges = " OR ".join("day BETWEEN %s AND %s" for _ in day_ranges)
        parts.append(
            f"SELECT article_id{location_col}, quantity, revenue "
            f'FROM "{SalesDay._meta.db_table}" WHERE ({ranges}) AND article_id IS NOT NULL{where_location}'
        )
        params += [adapt(d) for pair in day_ranges for d in pair] + location_params
    if months is not None and by_location and not revenue and window.location_id is None:
        # Every (article, location) pair: the running total at the last
        # whole month's end less the one before the first whole month.
        # Only units (the callers that want pairs sum no revenue).
        table = SalesToMonth._meta.db_table
        parts.append(
            f'SELECT article_id, location_id, quantity, 0 AS revenue FROM "{table}" WHERE month = %s '
            f'UNION ALL SELECT article_id, location_id, -quantity, 0 FROM "{table}" WHERE month = %s'
        )
        params += [adapt(months[1]), adapt((months[0] - timedelta(days=1)).replace(day=1))]
    elif months is not None:
        # Rows without a location are the totals over all locations.
        which = where_location or (" AND location_id IS NOT NULL" if by_location else " AND location_id IS NULL")
        parts.append(
            f"SELECT article_id{location_col}, quantity, revenue "
            f'FROM "{SalesMonth._meta.db_table}" WHERE month BETWEEN %s AND %s{which}'
        )
        params += [adapt(months[0]), adapt(months[1]), *location_params]
    # Not grouped here: the CTE groups the rolled rows and the raw tail once.
    return " UNION ALL ".join(parts), params


def _raw_select(window: Window, by_location: bool) -> tuple[str, list]:
    t = _tables()
    bounds = _receipt_bounds(window)
    by_register = by_location or window.location_id is not None
    location_col = ", c.location_id" if by_location else ""
    where_location = " AND c.location_id = %s" if window.location_id is not None else ""
    joins = ""
    if by_register or not bounds.exact:
        # The receipts bounded by the same id range: read through their
        # primary key instead of the whole table.
        joins = f'JOIN "{t["receipt"]}" r ON r.id = l.receipt_id AND r.id BETWEEN %s AND %s '
    if by_register:
        joins += f'JOIN "{t["register"]}" c ON c.id = r.register_id '
    params: list = [bounds.lo, bounds.hi] if joins else []
    params += [bounds.lo, bounds.hi]
    where_dates = ""
    if not bounds.exact:
        adapt = connection.ops.adapt_datetimefield_value
        where_dates = " AND r.created_at >= %s AND r.created_at < %s"
        params += [adapt(window.start), adapt(window.end)]
    sql = (
        f"SELECT l.article_id{location_col}, SUM(l.quantity) AS quantity, "
        f"SUM(l.quantity * l.unit_price - l.discount) AS revenue "
        f'FROM "{t["line"]}" l {joins}'
        f"WHERE l.receipt_id BETWEEN %s AND %s{where_dates} "
        f"AND l.article_id IS NOT NULL{where_location} "
        f"GROUP BY l.article_id{location_col}"
    )
    if window.location_id is not None:
        params.append(window.location_id)
    return sql, params


def _fetch(sql: str, params: list) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [col[0] for col in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _stock_cte(window: Window) -> tuple[str, list]:
    t = _tables()
    where = " WHERE location_id = %s" if window.location_id is not None else ""
    sql = f'stock AS (SELECT article_id, SUM(on_hand) AS on_hand FROM "{t["level"]}"{where} GROUP BY article_id)'
    return sql, [window.location_id] if window.location_id is not None else []


def _slow_movers(window: Window, limit: int) -> list[dict]:
    t = _tables()
    sold, sold_params = _sold_cte(window, by_location=False)
    stock, stock_params = _stock_cte(window)
    sql = (
        f"WITH {sold}, {stock} "
        f"SELECT a.sku, a.name, a.category, st.on_hand, COALESCE(s.quantity, 0) AS quantity, "
        f"COALESCE(s.revenue, 0) AS revenue "
        f'FROM stock st JOIN "{t["article"]}" a ON a.id = st.article_id '
        f"LEFT JOIN sold s ON s.article_id = st.article_id "
        f"WHERE st.on_hand > 0 "
        f"ORDER BY COALESCE(s.quantity, 0) ASC, a.sku ASC LIMIT %s"
    )
    rows = _fetch(sql, [*sold_params, *stock_params, limit])
    return [
        {
            "sku": row["sku"],
            "name": row["name"],
            "category": row["category"],
            "on_hand": _qty(row["on_hand"]),
            "quantity": _qty(row["quantity"]),
            "revenue": _money(row["revenue"]),
        }
        for row in rows
    ]


@consistent
def sales_by_category(*, window: Window) -> list[dict]:
    """Quantity and revenue per article category ("" = uncategorised)."""
    t = _tables()
    sold, params = _sold_cte(window, by_location=False)
    rows = _fetch(
        f"WITH {sold} SELECT a.category, SUM(s.quantity) AS quantity, SUM(s.revenue) AS revenue "
        f'FROM sold s JOIN "{t["article"]}" a ON a.id = s.article_id '
        f"GROUP BY a.category ORDER BY SUM(s.revenue) DESC, a.category ASC",
        params,
    )
    return [
        {
            "category": row["category"] or "(none)",
            "quantity": _qty(row["quantity"]),
            "revenue": _money(row["revenue"]),
        }
        for row in rows
    ]


@consistent
def sell_through(*, window: Window, limit: int = 50) -> list[dict]:
    """Per article: units sold in the window / (units sold + on hand now),
    in percent, highest first; articles that neither sold nor hold stock
    are left out."""
    t = _tables()
    sold, sold_params = _sold_cte(window, by_location=False, revenue=False)
    stock, stock_params = _stock_cte(window)
    sql = (
        f"WITH {sold}, {stock}, "
        f"joined AS (SELECT COALESCE(s.article_id, st.article_id) AS article_id, "
        f"COALESCE(s.quantity, 0) AS sold, COALESCE(st.on_hand, 0) AS on_hand "
        f"FROM sold s LEFT JOIN stock st ON st.article_id = s.article_id "
        f"UNION ALL SELECT st.article_id, 0, st.on_hand FROM stock st "
        f"WHERE st.on_hand > 0 AND NOT EXISTS (SELECT 1 FROM sold s WHERE s.article_id = st.article_id)) "
        f"SELECT a.sku, a.name, j.sold, j.on_hand, "
        f"CASE WHEN j.sold + j.on_hand > 0 THEN 100.0 * j.sold / (j.sold + j.on_hand) END AS pct "
        f'FROM joined j JOIN "{t["article"]}" a ON a.id = j.article_id '
        f"WHERE j.sold + j.on_hand > 0 "
        f"ORDER BY pct DESC, a.sku ASC LIMIT %s"
    )
    rows = _fetch(sql, [*sold_params, *stock_params, limit])
    return [
        {
            "sku": row["sku"],
            "name": row["name"],
            "sold": _qty(row["sold"]),
            "on_hand": _qty(row["on_hand"]),
            "sell_through_pct": Decimal(str(row["pct"])).quantize(Decimal("0.1")),
        }
        for row in rows
    ]


@consistent
def margins(*, window: Window, limit: int = 50) -> list[dict]:
    """Revenue, cost and margin per article whose preferred supplier
    article has a cost, largest margin first."""
    t = _tables()
    sold, params = _sold_cte(window, by_location=False)
    rows = _fetch(
        f"WITH {sold} SELECT a.sku, a.name, s.quantity, s.revenue, sa.cost "
        f'FROM sold s JOIN "{t["sa"]}" sa ON sa.article_id = s.article_id AND sa.preferred = %s '
        f'JOIN "{t["article"]}" a ON a.id = s.article_id '
        f"WHERE sa.cost IS NOT NULL "
        f"ORDER BY s.revenue - s.quantity * sa.cost DESC, a.sku ASC LIMIT %s",
        [*params, True, limit],
    )
    out = []
    for row in rows:
        quantity = _qty(row["quantity"])
        revenue, cost_total = _money(row["revenue"]), _money(quantity * Decimal(str(row["cost"])))
        out.append(
            {
                "sku": row["sku"],
                "name": row["name"],
                "quantity": quantity,
                "revenue": revenue,
                "cost": cost_total,
                "margin": revenue - cost_total,
                "margin_pct": ((revenue - cost_total) / revenue * 100).quantize(Decimal("0.1")) if revenue else None,
            }
        )
    return out


@consistent
def stock_cover(*, window: Window, limit: int = 50, today: date | None = None) -> list[dict]:
    """Days of cover per (article, location): on hand / average daily sales
    over the window, lowest first, with the projected stock-out date
    (today + days of cover). Pairs that did not sell in the window have no
    finite cover and are left out; nothing on hand means cover 0, out now."""
    t = _tables()
    today = today or timezone.localdate()
    if connection.vendor == "postgresql":
        # The planner guesses a few hundred (article, location) groups where
        # a year has ~100,000 and then joins them to the levels by nested
        # loops (seconds); hash joins take a fraction. This transaction only.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_nestloop = off")
    sold, sold_params = _sold_cte(window, by_location=True, revenue=False)
    # Rank on ids first; names are joined for the `limit` rows only.
    sql = (
        f"WITH {sold}, ranked AS (SELECT s.article_id, s.location_id, lv.on_hand, s.quantity AS sold, "
        f"CASE WHEN lv.on_hand <= 0 THEN 0 ELSE lv.on_hand * 1.0 * %s / s.quantity END AS cover "
        f'FROM sold s JOIN "{t["level"]}" lv ON lv.article_id = s.article_id AND lv.location_id = s.location_id '
        f"WHERE s.quantity > 0) "
        f"SELECT a.sku, a.name, loc.code AS location, r.on_hand, r.sold, r.cover "
        f'FROM ranked r JOIN "{t["article"]}" a ON a.id = r.article_id '
        f'JOIN "{t["location"]}" loc ON loc.id = r.location_id '
        f"ORDER BY r.cover ASC, a.sku ASC, loc.code ASC LIMIT %s"
    )
    rows = _fetch(sql, [*sold_params, window.days, limit])
    out = []
    for row in rows:
        cover = Decimal(str(row["cover"])).quantize(Decimal("0.1"))
        out.append(
            {
                "sku": row["sku"],
                "name": row["name"],
                "location": row["location"],
                "on_hand": _qty(row["on_hand"]),
                "avg_daily_sales": (Decimal(str(row["sold"])) / window.days).quantize(QTY),
                "days_of_cover": cover,
                "stockout_date": today + timedelta(days=int(cover)),
            }
        )
    return out


def rollup_freshness() -> dict:
    """What a report page says about its sources: days up to
    `complete_through` come from the daily rollup as of `rolled_at`; later
    days (always today) are read from the receipt lines."""
    state = RollupState.objects.filter(name="sales").values("complete_through", "rolled_at").first()
    return state or {"complete_through": None, "rolled_at": None}


def location_choices() -> list[tuple[int, str]]:
    return list(Location.objects.filter(active=True).values_list("pk", "code"))
