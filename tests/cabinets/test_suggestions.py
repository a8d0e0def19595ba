"""Tray thresholds open one order suggestion per article and cabinet
location, in the core's list, and refills close it."""
from __future__ import annotations

from decimal import Decimal

import pytest

from cabinets.models import Tray
from cabinets.services.readings import readings_apply
from posinv.models import ReorderSuggestion
from tests.cabinets.conftest import at, reading

pytestmark = pytest.mark.django_db


def apply(cabinet, *readings):
    return readings_apply(cabinet=cabinet, readings=list(readings), via="push", now=at(60 * 24))


def suggestions():
    return list(
        ReorderSuggestion.objects.order_by("pk").values_list(
            "source", "source_ref", "state", "quantity_on_hand", "trigger_level", "suggested_quantity"
        )
    )


def test_falling_below_the_threshold_opens_one_suggestion_not_one_per_reading(cabinet, tray, screw):
    apply(cabinet, reading(grams="200", minutes=0))  # 10, threshold 5
    assert suggestions() == []

    apply(cabinet, reading(grams="140", minutes=10))  # 4
    apply(cabinet, reading(grams="130", minutes=20))  # 3
    apply(cabinet, reading(grams="130", minutes=30))  # 3

    assert suggestions() == [("tray", "CAB1/T-1", "open", Decimal("4"), Decimal("5"), Decimal("6"))]
    suggestion = ReorderSuggestion.objects.get()
    assert (suggestion.article_id, suggestion.location_id) == (screw.pk, cabinet.location_id)


def test_a_refill_closes_the_suggestion_and_a_later_drop_opens_a_new_one(cabinet, tray, screw):
    tray.capacity = Decimal("20")
    tray.save()
    apply(cabinet, reading(grams="140", minutes=0))  # 4: opens, up to capacity 20

    apply(cabinet, reading(grams="300", minutes=10))  # 20: refilled
    assert suggestions() == [("tray", "CAB1/T-1", "closed", Decimal("4"), Decimal("5"), Decimal("16"))]

    apply(cabinet, reading(grams="120", minutes=20))  # 2
    assert [s[2] for s in suggestions()] == ["closed", "open"]
    assert suggestions()[1] == ("tray", "CAB1/T-1", "open", Decimal("2"), Decimal("5"), Decimal("18"))


def test_two_low_trays_of_one_article_share_one_suggestion_until_both_are_refilled(cabinet, tray, screw):
    Tray.objects.create(cabinet=cabinet, tray_id="T-2", article=screw, tare_g=Decimal("100"), threshold=Decimal("5"))
    apply(cabinet, reading(grams="130", minutes=0), reading(tray_id="T-2", grams="120", minutes=0))
    assert ReorderSuggestion.objects.filter(state="open").count() == 1

    apply(cabinet, reading(grams="300", minutes=10))  # T-1 refilled, T-2 still low
    assert ReorderSuggestion.objects.get().state == "open"

    apply(cabinet, reading(tray_id="T-2", grams="300", minutes=20))
    assert ReorderSuggestion.objects.get().state == "closed"


def test_a_tray_without_threshold_never_suggests(cabinet, tray):
    Tray.objects.filter(pk=tray.pk).update(threshold=None)

    apply(cabinet, reading(grams="100", minutes=0))

    assert suggestions() == []
