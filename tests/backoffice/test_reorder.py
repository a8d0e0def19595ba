"""Reorder points and order-up-to levels: by hand, and computed from
average daily sales, lead time and a safety factor (service and command)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from backoffice.models import ReorderPlan
from backoffice.services.reorder import reorder_level_set, reorder_levels_compute
from posinv.exceptions import InvalidInput
from posinv.models import ReorderSuggestion, StockLevel
from tests.backoffice.factories import make_register, make_supplier, make_supplier_article, sell, stock_receive
from tests.factories import make_article, make_location

TODAY = date(2026, 5, 31)


@pytest.fixture
def sales(db):
    """28 days to TODAY: APPLE sells 56 at S1 (2/day), PEAR 14 at S1 (0.5/day)
    and 28 at S2; one return of 2 pears at S2. A sale before the window."""
    s1, s2 = make_location(code="S1"), make_location(code="S2")
    r1, r2 = make_register(location=s1, code="R1"), make_register(location=s2, code="R2")
    apple, pear = make_article(sku="APPLE"), make_article(sku="PEAR")
    supplier = make_supplier(code="FRUIT", lead_time_days=10)
    make_supplier_article(supplier=supplier, article=apple, lead_time_days=3)
    make_supplier_article(supplier=supplier, article=pear)
    for article, location in [(apple, s1), (pear, s1), (pear, s2)]:
        stock_receive(article=article, location=location, quantity="500")
    sell(register=r1, at=datetime(2026, 5, 4, 9, tzinfo=UTC), items=[("APPLE", "56", "1"), ("PEAR", "14", "1")])
    sell(register=r2, at=datetime(2026, 5, 31, 20, tzinfo=UTC), items=[("PEAR", "30", "1")])
    sell(register=r2, at=datetime(2026, 5, 31, 21, tzinfo=UTC), items=[("PEAR", "-2", "1")])
    sell(register=r1, at=datetime(2026, 5, 3, 23, 59, tzinfo=UTC), items=[("APPLE", "1000", "1")])
    return s1, s2, apple, pear


def levels() -> list[tuple]:
    return list(
        StockLevel.objects.order_by("article__sku", "location__code").values_list(
            "article__sku", "location__code", "reorder_point", "order_up_to"
        )
    )


def test_compute_sets_points_from_average_daily_sales_lead_time_and_safety_factor(sales):
    result = reorder_levels_compute(window_days=28, safety_factor=Decimal("0.5"), review_days=7, today=TODAY)

    assert result.updated == 3
    # APPLE@S1: 2/day x 3 days x 1.5 = 9; + 2 x 7 = 14 -> 23
    # PEAR@S1: 0.5/day x 10 x 1.5 = 7.5 -> 8; + 3.5 -> 4 => 12
    # PEAR@S2: 1/day (28 net) x 10 x 1.5 = 15; + 7 => 22
    assert levels() == [
        ("APPLE", "S1", Decimal("9.000"), Decimal("23.000")),
        ("PEAR", "S1", Decimal("8.000"), Decimal("12.000")),
        ("PEAR", "S2", Decimal("15.000"), Decimal("22.000")),
    ]
    plan = ReorderPlan.objects.get(article__sku="PEAR", location__code="S1")
    assert (plan.source, plan.avg_daily_sales, plan.lead_time_days, plan.safety_factor) == (
        "computed",
        Decimal("0.500"),
        10,
        Decimal("0.500"),
    )


def test_compute_keeps_levels_set_by_hand_unless_asked(sales):
    s1, _, apple, _ = sales
    reorder_level_set(article_id=apple.pk, location_id=s1.pk, reorder_point="100", order_up_to="150", set_by="anna")

    kept = reorder_levels_compute(today=TODAY)
    assert (kept.updated, kept.kept_manual) == (2, 1)
    assert levels()[0] == ("APPLE", "S1", Decimal("100.000"), Decimal("150.000"))

    reorder_levels_compute(today=TODAY, include_manual=True)
    assert levels()[0] == ("APPLE", "S1", Decimal("9.000"), Decimal("23.000"))


def test_a_computed_point_above_stock_opens_a_suggestion(sales):
    s1, _, apple, _ = sales
    level = StockLevel.objects.get(article=apple, location=s1)
    assert level.on_hand == Decimal("-556.000")

    reorder_levels_compute(today=TODAY)

    suggestion = ReorderSuggestion.objects.get(article=apple, location=s1, state="open")
    assert (suggestion.trigger_level, suggestion.suggested_quantity) == (Decimal("9.000"), Decimal("579.000"))


@pytest.mark.parametrize(
    ("point", "up_to", "field", "reason"),
    [
        ("-1", "5", "reorder_point", "must be a number of at least 0"),
        ("abc", "5", "reorder_point", "'abc' is not a number"),
        ("10", "5", "order_up_to", "must be at least the reorder point (10)"),
        (None, "5", "reorder_point", "an order-up-to level needs a reorder point"),
        ("1.0001", None, "reorder_point", "at most 3 decimal places"),
    ],
)
def test_setting_bad_levels_by_hand_is_refused_and_changes_nothing(sales, point, up_to, field, reason):
    s1, _, apple, _ = sales
    with pytest.raises(InvalidInput) as caught:
        reorder_level_set(article_id=apple.pk, location_id=s1.pk, reorder_point=point, order_up_to=up_to)
    assert [(p.field, p.reason) for p in caught.value.problems] == [(field, reason)]
    assert levels()[0] == ("APPLE", "S1", None, None)
    assert not ReorderPlan.objects.exists()


def test_the_command_reports_and_refuses_bad_options(sales):
    out = StringIO()
    call_command("reorder_compute", "--location", "S2", "--today", "2026-05-31", stdout=out)
    assert "1 levels computed, 0 set by hand kept" in out.getvalue()

    assert levels()[2] == ("PEAR", "S2", Decimal("15.000"), Decimal("22.000"))
    with pytest.raises(CommandError, match="unknown location NOPE"):
        call_command("reorder_compute", "--location", "NOPE")
    with pytest.raises(CommandError, match="window_days: must be at least 1"):
        call_command("reorder_compute", "--window-days", "0")
    with pytest.raises(CommandError, match="is not a date"):
        call_command("reorder_compute", "--today", "31.5.2026")
    with pytest.raises(CommandError, match="'x' is not a number"):
        call_command("reorder_compute", "--safety-factor", "x")
