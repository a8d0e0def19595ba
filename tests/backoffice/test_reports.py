"""Report queries and pages on a known history (tests/backoffice/reportdata.py):

S1 May 2  A 10 x 2.00 (discount 1.00) + B 5 x 3.00       = 34.00
S1 May 5  A 4 x 2.00                                      =  8.00
S2 May 5  C 3 x 1.50 + A -1 x 2.00 (a return)            =  2.50
S1 Apr 25 A 5 x 2.00 (previous period)                    = 10.00
S1 May 11 A 1 x 2.00 (after the window)
stock now: A 80@S1 + 1@S2, B 15@S1, C 7@S2, D 7@S1; A costs 1.20."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from backoffice.selectors import reports as q
from tests.backoffice.reportdata import WINDOW, report_data


@pytest.fixture
def window(db):
    s1, s2 = report_data()
    return q.window_make(date_from=WINDOW[0], date_to=WINDOW[1]), s1, s2


def test_sales_by_day_and_location(window):
    w, _, _ = window
    assert q.sales_by_period(window=w, granularity="day") == [
        {"period": date(2026, 5, 2), "location": "S1", "quantity": D("15.000"), "revenue": D("34.00"), "receipts": 1},
        {"period": date(2026, 5, 5), "location": "S1", "quantity": D("4.000"), "revenue": D("8.00"), "receipts": 1},
        {"period": date(2026, 5, 5), "location": "S2", "quantity": D("2.000"), "revenue": D("2.50"), "receipts": 1},
    ]


def test_sales_by_month_for_one_location(window):
    w, s1, _ = window
    one = q.window_make(date_from=date(2026, 4, 1), date_to=date(2026, 5, 31), location_id=s1.pk)
    assert q.sales_by_period(window=one, granularity="month") == [
        {"period": date(2026, 4, 1), "location": "S1", "quantity": D("5.000"), "revenue": D("10.00"), "receipts": 1},
        {"period": date(2026, 5, 1), "location": "S1", "quantity": D("20.000"), "revenue": D("44.00"), "receipts": 3},
    ]


def test_comparison_with_the_previous_period(window):
    w, _, _ = window
    assert [
        (r["location"], r["revenue"], r["previous_revenue"], r["revenue_change_pct"])
        for r in q.sales_comparison(window=w)
    ] == [
        ("S1", D("42.00"), D("10.00"), D("320.0")),
        ("S2", D("2.50"), D("0.00"), None),
        ("all locations", D("44.50"), D("10.00"), D("345.0")),
    ]


def test_top_and_bottom_articles_and_categories(window):
    w, _, _ = window
    assert [(r["sku"], r["quantity"], r["revenue"]) for r in q.articles_ranked(window=w)] == [
        ("A", D("13.000"), D("25.00")),
        ("B", D("5.000"), D("15.00")),
        ("C", D("3.000"), D("4.50")),
    ]
    assert [(r["sku"], r["on_hand"], r["quantity"]) for r in q.articles_ranked(window=w, bottom=True, limit=3)] == [
        ("D", D("7.000"), D("0.000")),
        ("C", D("7.000"), D("3.000")),
        ("B", D("15.000"), D("5.000")),
    ]
    assert q.sales_by_category(window=w) == [
        {"category": "fruit", "quantity": D("18.000"), "revenue": D("40.00")},
        {"category": "veg", "quantity": D("3.000"), "revenue": D("4.50")},
    ]


def test_sell_through(window):
    w, _, _ = window
    assert [(r["sku"], r["sold"], r["on_hand"], r["sell_through_pct"]) for r in q.sell_through(window=w)] == [
        ("C", D("3.000"), D("7.000"), D("30.0")),
        ("B", D("5.000"), D("15.000"), D("25.0")),
        ("A", D("13.000"), D("81.000"), D("13.8")),
        ("D", D("0.000"), D("7.000"), D("0.0")),
    ]


def test_margin_only_where_cost_is_known(window):
    w, _, _ = window
    assert q.margins(window=w) == [
        {
            "sku": "A",
            "name": "Apple",
            "quantity": D("13.000"),
            "revenue": D("25.00"),
            "cost": D("15.60"),
            "margin": D("9.40"),
            "margin_pct": D("37.6"),
        }
    ]


def test_days_of_cover_and_projected_stockout(window):
    w, _, _ = window
    assert [
        (r["sku"], r["location"], r["on_hand"], r["avg_daily_sales"], r["days_of_cover"], r["stockout_date"])
        for r in q.stock_cover(window=w, today=date(2026, 5, 10))
    ] == [
        ("C", "S2", D("7.000"), D("0.300"), D("23.3"), date(2026, 6, 2)),
        ("B", "S1", D("15.000"), D("0.500"), D("30.0"), date(2026, 6, 9)),
        ("A", "S1", D("80.000"), D("1.400"), D("57.1"), date(2026, 7, 6)),
    ]


def test_a_window_ending_before_it_starts_is_refused(db):
    with pytest.raises(q.InvalidInput) as caught:
        q.window_make(date_from=date(2026, 5, 2), date_to=date(2026, 5, 1))
    assert [(p.field, p.reason) for p in caught.value.problems] == [("date_to", "must not be before date_from")]


@pytest.mark.parametrize(
    ("granularity", "date_from", "date_to", "expected"),
    [
        ("day", date(2026, 5, 30), date(2026, 6, 2), ["2026-05-30", "2026-05-31", "2026-06-01", "2026-06-02"]),
        ("week", date(2026, 5, 6), date(2026, 5, 20), ["2026-05-04", "2026-05-11", "2026-05-18"]),
        ("month", date(2026, 11, 15), date(2027, 2, 1), ["2026-11-01", "2026-12-01", "2027-01-01", "2027-02-01"]),
    ],
)
def test_the_sales_chart_has_every_period_even_without_sales(db, granularity, date_from, date_to, expected):
    from backoffice.reports import periods

    window = q.window_make(date_from=date_from, date_to=date_to)
    assert [str(start) for start in periods(window, granularity)] == expected


def test_the_sales_page_chart_shows_days_without_sales_as_zero(window):
    from backoffice.reports import ReportFilters, sales_page

    filters = ReportFilters({"date_from": "2026-05-01", "date_to": "2026-05-05"})
    assert filters.is_valid()
    chart = sales_page(filters).charts[0].as_data()
    assert (chart["labels"], chart["series"][0]["values"]) == (
        ["2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04", "2026-05-05"],
        [0.0, 34.0, 0.0, 0.0, 10.5],
    )


def test_a_window_whose_receipt_ids_interleave_with_other_dates_counts_only_its_own(window):
    """Apr 20 - May 3 holds the Apr 25 receipt (recorded last) and the May 2
    one; the May 5 receipts lie between them by id and must not count."""
    _, s1, _ = window
    mixed = q.window_make(date_from=date(2026, 4, 20), date_to=date(2026, 5, 3))

    assert [(r["sku"], r["quantity"], r["revenue"]) for r in q.articles_ranked(window=mixed)] == [
        ("A", D("15.000"), D("29.00")),
        ("B", D("5.000"), D("15.00")),
    ]
    assert [(r["location"], r["revenue"], r["receipts"]) for r in q.sales_comparison(window=mixed)] == [
        ("S1", D("44.00"), 2),
        ("all locations", D("44.00"), 2),
    ]
    assert [(r["sku"], r["quantity"], r["margin"]) for r in q.margins(window=mixed)] == [("A", D("15.000"), D("11.00"))]
    assert [
        (r["sku"], r["location"], r["avg_daily_sales"]) for r in q.stock_cover(window=mixed, today=date(2026, 5, 3))
    ] == [
        ("B", "S1", D("0.357")),
        ("A", "S1", D("1.071")),
    ]
