"""The weight-to-quantity rule: counts through the ledger, tolerance,
hysteresis, position, duplicates, rejections, shrink alerts (docs/cabinets.md)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cabinets.models import ShrinkAlert, Tray, WeightReading
from cabinets.services.readings import ReadingIn, readings_apply
from posinv.models import StockChange, StockLevel, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.cabinets.conftest import at, reading
from tests.factories import make_article

pytestmark = pytest.mark.django_db


def apply(cabinet, *readings):
    return readings_apply(cabinet=cabinet, readings=list(readings), via="push", now=at(60 * 24))


def on_hand(article, cabinet) -> Decimal:
    return StockLevel.objects.get(article=article, location=cabinet.location).on_hand


def outcomes(result) -> list[tuple]:
    return [(r.status, r.outcome, r.quantity) for r in result.results]


def test_first_reading_posts_net_weight_divided_by_unit_weight_as_a_count(cabinet, tray, screw):
    result = apply(cabinet, reading(grams="222.4", position="A-03"))

    assert outcomes(result) == [("applied", "posted", Decimal("12"))]
    move = StockMove.objects.get()
    assert (move.kind, move.counted, move.quantity, move.origin, move.origin_code, move.reference) == (
        "count", Decimal("12"), Decimal("12"), "cabinet", "CAB1", "CAB1/T-1"
    )
    assert move.idempotency_key == "cabinet:CAB1:T-1:2026-05-03T08:00:00.000000Z"
    assert on_hand(screw, cabinet) == Decimal("12")
    tray.refresh_from_db()
    assert (tray.quantity, tray.weight_g, tray.state, tray.position) == (
        Decimal("12"), Decimal("222.4"), "filled", "A-03"
    )
    row = WeightReading.objects.get()
    assert (row.outcome, row.quantity, row.move_id, row.via) == ("posted", Decimal("12"), move.pk, "push")
    # like every stock change, it is announced to the other channels through the outbox
    change = StockChange.objects.get()
    assert (change.article_id, change.location_id, change.on_hand, change.origin, change.origin_code) == (
        screw.pk, cabinet.location_id, Decimal("12"), "cabinet", "CAB1"
    )


def test_a_change_posts_the_difference_and_an_equal_quantity_posts_nothing(cabinet, tray, screw):
    apply(cabinet, reading(grams="220", minutes=0))

    result = apply(cabinet, reading(grams="170.9", minutes=10), reading(grams="171.5", minutes=20))

    assert outcomes(result) == [("applied", "posted", Decimal("7")), ("applied", "unchanged", Decimal("7"))]
    assert list(StockMove.objects.order_by("pk").values_list("quantity", "counted")) == [
        (Decimal("12"), Decimal("12")), (Decimal("-5"), Decimal("7"))
    ]
    assert on_hand(screw, cabinet) == Decimal("7")
    tray.refresh_from_db()
    assert (tray.weight_g, tray.quantity, tray.quantity_since) == (Decimal("171.5"), Decimal("7"), at(10))


def test_an_ambiguous_reading_is_held_and_posted_only_when_it_repeats(cabinet, tray, screw):
    apply(cabinet, reading(grams="220", minutes=0))

    # 10.6 units: 0.4 off a whole number, beyond the default tolerance of 0.25
    held = apply(cabinet, reading(grams="206", minutes=10))
    assert outcomes(held) == [("applied", "held", Decimal("11"))]
    assert "10.60 units is not within 0.25 of a whole number" in held.results[0].reason
    assert on_hand(screw, cabinet) == Decimal("12")
    assert StockMove.objects.count() == 1

    repeated = apply(cabinet, reading(grams="205.5", minutes=20))
    assert outcomes(repeated) == [("applied", "posted", Decimal("11"))]
    assert repeated.results[0].reason == "ambiguous reading confirmed by a repeat"
    assert on_hand(screw, cabinet) == Decimal("11")


def test_a_held_reading_followed_by_a_clean_one_posts_the_clean_count(cabinet, tray, screw):
    apply(cabinet, reading(grams="220", minutes=0))
    apply(cabinet, reading(grams="206", minutes=10))

    result = apply(cabinet, reading(grams="190.2", minutes=20))

    assert outcomes(result) == [("applied", "posted", Decimal("9"))]
    assert on_hand(screw, cabinet) == Decimal("9")
    tray.refresh_from_db()
    assert tray.held_quantity is None


def test_a_new_count_posts_only_past_the_hysteresis_margin(cabinet, tray, screw):
    cabinet.hysteresis_units = Decimal("2")
    cabinet.save()
    apply(cabinet, reading(grams="300", minutes=0))  # 20

    within = apply(cabinet, reading(grams="280", minutes=10))  # 18: a change of 2, not more than 2
    past = apply(cabinet, reading(grams="270", minutes=20))  # 17: a change of 3

    assert outcomes(within) == [("applied", "unchanged", Decimal("18"))]
    assert within.results[0].reason == "18 is within the hysteresis margin of 2 around 20"
    assert outcomes(past) == [("applied", "posted", Decimal("17"))]
    assert on_hand(screw, cabinet) == Decimal("17")


def test_large_counts_get_a_margin_of_the_piece_weight_spread(cabinet, tray, screw):
    apply(cabinet, reading(grams="4100", minutes=0))  # 400 pieces: 1 % spread = 4

    within = apply(cabinet, reading(grams="4060", minutes=10))  # 396
    past = apply(cabinet, reading(grams="4050", minutes=20))  # 395

    assert outcomes(within) == [("applied", "unchanged", Decimal("396"))]
    assert outcomes(past) == [("applied", "posted", Decimal("395"))]
    assert on_hand(screw, cabinet) == Decimal("395")


def test_position_is_synchronized_while_empty_and_kept_once_filled(cabinet, tray, screw):
    apply(cabinet, reading(grams="100", minutes=0, position="A-01"))  # empty, at A-01
    apply(cabinet, reading(grams="100", minutes=5, position="A-02"))  # still empty, moved to A-02
    apply(cabinet, reading(grams="200", minutes=10, position="A-02"))  # filled at A-02

    swapped = apply(cabinet, reading(grams="190", minutes=20, position="C-07"))

    tray.refresh_from_db()
    assert tray.position == "A-02"
    assert swapped.results[0].position_ignored is True
    row = WeightReading.objects.get(read_at=at(20))
    assert (row.position, row.position_ignored, row.outcome) == ("C-07", True, "posted")

    apply(cabinet, reading(grams="100", minutes=30, position="C-07"))  # emptied: position still kept
    apply(cabinet, reading(grams="100", minutes=40, position="C-07"))  # empty now: synchronized
    tray.refresh_from_db()
    assert (tray.state, tray.position) == ("empty", "C-07")


def test_a_replayed_reading_is_a_duplicate_and_moves_nothing(cabinet, tray, screw):
    first = apply(cabinet, reading(grams="220", minutes=0))

    again = apply(cabinet, reading(grams="220", minutes=0), reading(grams="150", minutes=10),
                  reading(grams="150", minutes=10))

    assert [(r.status, r.outcome, r.quantity) for r in again.results] == [
        ("duplicate", "posted", Decimal("12")),
        ("applied", "posted", Decimal("5")),
        ("duplicate", "posted", Decimal("5")),
    ]
    assert again.results[0].move_id == first.results[0].move_id
    assert again.counts() == {
        "received": 3, "applied": 1, "duplicate": 2, "rejected": 0,
        "posted": 1, "unchanged": 0, "held": 0, "stale": 0,
    }
    assert WeightReading.objects.count() == 2
    assert StockMove.objects.count() == 2
    assert on_hand(screw, cabinet) == Decimal("5")


def test_bad_readings_are_rejected_with_reasons_and_the_good_ones_apply(cabinet, tray, screw):
    Tray.objects.create(cabinet=cabinet, tray_id="T-EMPTY")
    weightless = make_article(sku="BOX-1", unit_weight_g=None)
    Tray.objects.create(cabinet=cabinet, tray_id="T-BOX", article=weightless)

    result = apply(
        cabinet,
        reading(tray_id="T-404", grams="200"),
        reading(tray_id="T-EMPTY", grams="200"),
        reading(tray_id="T-BOX", grams="200"),
        reading(grams="-5", minutes=1),
        reading(grams="30000.5", minutes=2),
        reading(grams="40", minutes=3),
        reading(grams="200", minutes=60 * 24 + 6),
        reading(grams="250", minutes=4),
    )

    assert [(r.status, r.code) for r in result.results] == [
        ("rejected", "unknown_tray"),
        ("rejected", "no_article"),
        ("rejected", "no_unit_weight"),
        ("rejected", "negative_weight"),
        ("rejected", "absurd_weight"),
        ("rejected", "below_tare"),
        ("rejected", "future_read_at"),
        ("applied", ""),
    ]
    assert [r.reason for r in result.results[:6]] == [
        "unknown tray 'T-404' in cabinet CAB1",
        "tray T-EMPTY has no article linked",
        "article BOX-1 has no unit weight in the article file",
        "weight -5 g is negative",
        "weight 30000.5 g is above the cell capacity of 30000 g",
        "weight 40 g is below the tray's tare of 100 g (tray lifted?)",
    ]
    assert StockMove.objects.count() == 1
    assert on_hand(screw, cabinet) == Decimal("15")
    assert WeightReading.objects.filter(outcome="rejected").count() == 7
    tray.refresh_from_db()
    assert (tray.quantity, tray.weight_g) == (Decimal("15"), Decimal("250"))


def test_a_rejected_reading_applies_when_sent_again_after_the_cause_is_fixed(cabinet, screw):
    bare = Tray.objects.create(cabinet=cabinet, tray_id="T-9", tare_g=Decimal("100"))
    assert apply(cabinet, reading(tray_id="T-9", grams="150")).results[0].code == "no_article"

    Tray.objects.filter(pk=bare.pk).update(article=screw)
    result = apply(cabinet, reading(tray_id="T-9", grams="150"))

    assert outcomes(result) == [("applied", "posted", Decimal("5"))]
    assert on_hand(screw, cabinet) == Decimal("5")


def test_a_reading_older_than_the_last_one_is_kept_as_stale_and_posts_nothing(cabinet, tray, screw):
    apply(cabinet, reading(grams="220", minutes=10))

    result = apply(cabinet, reading(grams="150", minutes=5))

    assert outcomes(result) == [("applied", "stale", Decimal("5"))]
    assert on_hand(screw, cabinet) == Decimal("12")
    tray.refresh_from_db()
    assert (tray.quantity, tray.last_read_at) == (Decimal("12"), at(10))


def test_an_article_in_two_trays_is_counted_as_the_sum_of_both(cabinet, tray, screw):
    Tray.objects.create(cabinet=cabinet, tray_id="T-2", article=screw, tare_g=Decimal("50"))
    apply(cabinet, reading(grams="200", minutes=0), reading(tray_id="T-2", grams="100", minutes=0))
    assert on_hand(screw, cabinet) == Decimal("15")

    apply(cabinet, reading(tray_id="T-2", grams="80", minutes=10))

    assert on_hand(screw, cabinet) == Decimal("13")
    assert list(StockMove.objects.order_by("pk").values_list("counted", flat=True)) == [
        Decimal("10"), Decimal("15"), Decimal("13")
    ]


def test_a_count_corrects_the_level_after_sales_at_the_cabinet(cabinet, tray, screw):
    apply(cabinet, reading(grams="300", minutes=0))  # 20
    stock_moves_post(
        moves=[MoveSpec(kind="sale", idempotency_key="s1", quantity=Decimal("-3"), article_id=screw.pk,
                        location_id=cabinet.location_id)],
        origin=StockOrigin(kind="register", code="R1"),
    )
    assert on_hand(screw, cabinet) == Decimal("17")

    apply(cabinet, reading(grams="260", minutes=30))  # 16 counted: one more gone than sold

    assert on_hand(screw, cabinet) == Decimal("16")
    move = StockMove.objects.filter(kind="count").latest("pk")
    assert (move.counted, move.quantity) == (Decimal("16"), Decimal("-1"))
    total = StockMove.objects.filter(article=screw, location=cabinet.location).aggregate(s=Sum("quantity"))["s"]
    assert total == on_hand(screw, cabinet)


def test_a_drop_larger_than_the_sales_since_the_last_count_raises_a_shrink_alert(cabinet, tray, screw):
    def weigh(grams: str, minutes: float):
        # Real clocks here: sales are compared by when they were recorded.
        now = timezone.now()
        return readings_apply(cabinet=cabinet, via="push", now=now, readings=[
            ReadingIn(tray_id="T-1", weight_g=Decimal(grams), read_at=now - timedelta(minutes=minutes))
        ])

    weigh("300", 30)  # 20
    stock_moves_post(
        moves=[MoveSpec(kind="sale", idempotency_key="s1", quantity=Decimal("-3"), article_id=screw.pk,
                        location_id=cabinet.location_id)],
        origin=StockOrigin(kind="register", code="R1"),
    )

    explained = weigh("270", 20)  # 17: all three sold
    assert ShrinkAlert.objects.count() == 0
    shrunk = weigh("200", 10)  # 10: seven gone, none sold since the last count

    assert outcomes(explained) == [("applied", "posted", Decimal("17"))]
    assert outcomes(shrunk) == [("applied", "posted", Decimal("10"))]
    alert = ShrinkAlert.objects.get()
    assert (alert.previous_quantity, alert.new_quantity, alert.sold, alert.unexplained) == (
        Decimal("17"), Decimal("10"), Decimal("0"), Decimal("7")
    )
    assert alert.reading.weight_g == Decimal("200")
    assert alert.tray == tray


@pytest.mark.postgres  # SQLite splits bulk statements at 999 parameters
def test_statements_per_batch_do_not_grow_with_the_batch(cabinet, screw):
    Tray.objects.bulk_create(
        [Tray(cabinet=cabinet, tray_id=f"T-{i:03d}", article=make_article(unit_weight_g=Decimal("10")),
              tare_g=Decimal("100")) for i in range(200)]
    )
    apply(cabinet, *[reading(tray_id=f"T-{i:03d}", grams="200", minutes=0) for i in range(200)])

    def statements(count: int, minutes: int) -> list[str]:
        batch = [reading(tray_id=f"T-{i:03d}", grams=str(200 + 10 * minutes), minutes=minutes) for i in range(count)]
        with CaptureQueriesContext(connection) as queries:
            result = apply(cabinet, *batch)
        assert result.counts()["posted"] == count
        return [" ".join(q["sql"].split(" ")[:3]) for q in queries]

    small = statements(10, 1)
    large = statements(200, 2)

    assert len(small) == len(large), (small, large)
    assert StockMove.objects.count() == 410


def test_an_empty_batch_changes_nothing_and_leaves_a_silent_cabinet_silent(cabinet, tray):
    result = apply(cabinet)

    assert result.counts()["received"] == 0
    cabinet.refresh_from_db()
    assert cabinet.last_reading_at is None
    assert WeightReading.objects.count() == 0


def test_a_reading_amounting_to_a_count_beyond_the_bound_is_rejected_and_the_others_apply(cabinet, tray):
    """posinv/bounds.py: a tiny unit weight turns a plausible weight into a
    count no level may hold; that reading is rejected with the reason."""
    dust = make_article(sku="DUST-1", unit_weight_g=Decimal("0.001"))
    Tray.objects.create(cabinet=cabinet, tray_id="T-DUST", article=dust)
    cabinet.max_weight_g = Decimal("50000000")  # a scale for sacks
    cabinet.save(update_fields=["max_weight_g"])

    result = apply(cabinet, reading(tray_id="T-DUST", grams="2000000"), reading(grams="200"))

    assert [(r.status, r.code) for r in result.results] == [("rejected", "out_of_bounds"), ("applied", "")]
    assert result.results[0].reason.startswith("weight 2000000 g is 2000000000 units of DUST-1: must be between")
    assert not StockLevel.objects.filter(article=dust).exists()
