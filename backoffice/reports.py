"""The report pages: each is a list of tables (shown, and exported as CSV)
and charts built from the report selectors. The admin views
(backoffice/admin.py) only parse the filters and render these."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django import forms
from django.utils import timezone

from backoffice.selectors import reports as q
from posinv.models import Location


class ReportFilters(forms.Form):
    """The filters every report page takes from the query string."""

    date_from = forms.DateField(required=False)
    date_to = forms.DateField(required=False)
    location = forms.CharField(required=False, help_text="location code; empty: all")
    granularity = forms.ChoiceField(required=False, choices=[("day", "day"), ("week", "week"), ("month", "month")])
    limit = forms.IntegerField(required=False, min_value=1, max_value=500)

    def clean_location(self):
        code = self.cleaned_data.get("location") or ""
        if not code:
            return None
        location = Location.objects.filter(code=code).first()
        if location is None:
            raise forms.ValidationError(f"unknown location {code!r}")
        return location

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        data["date_to"] = data.get("date_to") or today
        data["date_from"] = data.get("date_from") or data["date_to"] - timedelta(days=29)
        if data["date_to"] < data["date_from"]:
            self.add_error("date_to", "must not be before date_from")
        elif (data["date_to"] - data["date_from"]).days > 3 * 366:
            self.add_error("date_from", "a report spans at most 3 years")
        data["granularity"] = data.get("granularity") or "day"
        data["limit"] = data.get("limit") or 20
        return data

    def window(self) -> q.Window:
        data = self.cleaned_data
        location = data.get("location")
        return q.Window(
            date_from=data["date_from"], date_to=data["date_to"], location_id=location.pk if location else None
        )


@dataclass
class Table:
    name: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict]


@dataclass
class Chart:
    """What charts.js draws: bars or a line, one or more series over labels."""

    name: str
    title: str
    kind: str
    labels: list[str]
    series: list[dict]

    def as_data(self) -> dict:
        return {"title": self.title, "kind": self.kind, "labels": self.labels, "series": self.series}


@dataclass
class Page:
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


def _num(value) -> float:
    return float(value) if value is not None else 0.0


def periods(window: q.Window, granularity: str) -> list[date]:
    """Every period start in the window, so the chart shows days without sales as 0."""
    if granularity == "month":
        current, step = window.date_from.replace(day=1), None
    elif granularity == "week":
        current, step = window.date_from - timedelta(days=window.date_from.weekday()), timedelta(days=7)
    else:
        current, step = window.date_from, timedelta(days=1)
    out = []
    while current <= window.date_to:
        out.append(current)
        if step is None:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            current += step
    return out


def sales_page(filters: ReportFilters) -> Page:
    window = filters.window()
    granularity = filters.cleaned_data["granularity"]
    rows = q.sales_by_period(window=window, granularity=granularity)
    per_period: OrderedDict[date, float] = OrderedDict((start, 0.0) for start in periods(window, granularity))
    per_location: dict[str, float] = {}
    for row in rows:
        per_period[row["period"]] = per_period.get(row["period"], 0.0) + _num(row["revenue"])
        per_location[row["location"]] = per_location.get(row["location"], 0.0) + _num(row["revenue"])
    per_period = OrderedDict(sorted(per_period.items()))
    comparison = q.sales_comparison(window=window)
    return Page(
        charts=[
            Chart(
                "by_period",
                "Revenue per period",
                "line",
                [str(period) for period in per_period],
                [{"name": "revenue", "values": [round(v, 2) for v in per_period.values()]}],
            ),
            Chart(
                "by_location",
                "Revenue per location, this period and the previous one",
                "bar",
                [row["location"] for row in comparison[:-1]],
                [
                    {"name": "this period", "values": [_num(row["revenue"]) for row in comparison[:-1]]},
                    {"name": "previous period", "values": [_num(row["previous_revenue"]) for row in comparison[:-1]]},
                ],
            ),
        ],
        tables=[
            Table(
                "comparison",
                "Compared with the previous period",
                [
                    ("location", "Location"),
                    ("revenue", "Revenue"),
                    ("previous_revenue", "Previous revenue"),
                    ("revenue_change_pct", "Change %"),
                    ("quantity", "Quantity"),
                    ("previous_quantity", "Previous quantity"),
                    ("receipts", "Receipts"),
                    ("previous_receipts", "Previous receipts"),
                ],
                comparison,
            ),
            Table(
                "by_period",
                "Sales by period and location",
                [
                    ("period", "Period"),
                    ("location", "Location"),
                    ("quantity", "Quantity"),
                    ("revenue", "Revenue"),
                    ("receipts", "Receipts"),
                ],
                rows,
            ),
        ],
    )


def articles_page(filters: ReportFilters) -> Page:
    window = filters.window()
    limit = filters.cleaned_data["limit"]
    top = q.articles_ranked(window=window, limit=limit)
    bottom = q.articles_ranked(window=window, bottom=True, limit=limit)
    categories = q.sales_by_category(window=window)
    article_columns = [
        ("sku", "SKU"),
        ("name", "Name"),
        ("category", "Category"),
        ("quantity", "Quantity"),
        ("revenue", "Revenue"),
    ]
    return Page(
        charts=[
            Chart(
                "top",
                "Best sellers by revenue",
                "bar",
                [row["sku"] for row in top[:15]],
                [{"name": "revenue", "values": [_num(row["revenue"]) for row in top[:15]]}],
            ),
            Chart(
                "categories",
                "Revenue by category",
                "bar",
                [row["category"] for row in categories[:15]],
                [{"name": "revenue", "values": [_num(row["revenue"]) for row in categories[:15]]}],
            ),
        ],
        tables=[
            Table("top", "Best sellers", article_columns, top),
            Table(
                "bottom",
                "Slow movers (in stock, sold least)",
                [*article_columns[:3], ("on_hand", "On hand"), *article_columns[3:]],
                bottom,
            ),
            Table(
                "categories",
                "By category",
                [("category", "Category"), ("quantity", "Quantity"), ("revenue", "Revenue")],
                categories,
            ),
        ],
    )


def sell_through_page(filters: ReportFilters) -> Page:
    rows = q.sell_through(window=filters.window(), limit=filters.cleaned_data["limit"])
    return Page(
        charts=[
            Chart(
                "sell_through",
                "Sell-through % (sold / (sold + on hand))",
                "bar",
                [row["sku"] for row in rows[:15]],
                [{"name": "sell-through %", "values": [_num(row["sell_through_pct"]) for row in rows[:15]]}],
            )
        ],
        tables=[
            Table(
                "sell_through",
                "Sell-through",
                [
                    ("sku", "SKU"),
                    ("name", "Name"),
                    ("sold", "Sold"),
                    ("on_hand", "On hand"),
                    ("sell_through_pct", "Sell-through %"),
                ],
                rows,
            )
        ],
    )


def margin_page(filters: ReportFilters) -> Page:
    rows = q.margins(window=filters.window(), limit=filters.cleaned_data["limit"])
    return Page(
        charts=[
            Chart(
                "margin",
                "Margin by article (where cost is known)",
                "bar",
                [row["sku"] for row in rows[:15]],
                [
                    {"name": "revenue", "values": [_num(row["revenue"]) for row in rows[:15]]},
                    {"name": "margin", "values": [_num(row["margin"]) for row in rows[:15]]},
                ],
            )
        ],
        tables=[
            Table(
                "margin",
                "Margin",
                [
                    ("sku", "SKU"),
                    ("name", "Name"),
                    ("quantity", "Quantity"),
                    ("revenue", "Revenue"),
                    ("cost", "Cost"),
                    ("margin", "Margin"),
                    ("margin_pct", "Margin %"),
                ],
                rows,
            )
        ],
    )


def stock_cover_page(filters: ReportFilters) -> Page:
    rows = q.stock_cover(window=filters.window(), limit=filters.cleaned_data["limit"])
    return Page(
        charts=[
            Chart(
                "cover",
                "Days of cover (lowest first)",
                "bar",
                [f"{row['sku']}@{row['location']}" for row in rows[:15]],
                [{"name": "days of cover", "values": [_num(row["days_of_cover"]) for row in rows[:15]]}],
            )
        ],
        tables=[
            Table(
                "cover",
                "Days of cover and projected stock-out",
                [
                    ("sku", "SKU"),
                    ("name", "Name"),
                    ("location", "Location"),
                    ("on_hand", "On hand"),
                    ("avg_daily_sales", "Avg daily sales"),
                    ("days_of_cover", "Days of cover"),
                    ("stockout_date", "Projected stock-out"),
                ],
                rows,
            )
        ],
    )


@dataclass(frozen=True)
class PageSpec:
    slug: str
    title: str
    build: Callable[[ReportFilters], Page]
    description: str


PAGES: dict[str, PageSpec] = {
    spec.slug: spec
    for spec in [
        PageSpec(
            "sales",
            "Sales by period and location",
            sales_page,
            "Revenue per day/week/month and location, compared with the previous period.",
        ),
        PageSpec("articles", "Top and bottom articles", articles_page, "Best sellers, slow movers and categories."),
        PageSpec("sell-through", "Sell-through", sell_through_page, "Sold / (sold + on hand) per article."),
        PageSpec("margin", "Margin", margin_page, "Revenue minus the preferred supplier's cost, where known."),
        PageSpec(
            "stock-cover",
            "Days of cover",
            stock_cover_page,
            "On hand / average daily sales, and the projected stock-out date.",
        ),
    ]
}
