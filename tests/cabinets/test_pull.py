"""Pulling readings from the vendor endpoint (the fake vendor over real
HTTP): pages, cursor, overlap, errors, slow answers, schedule and lease."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cabinets.jobs import cabinet_pull_job
from cabinets.models import Tray, WeighingCabinet, WeightReading
from cabinets.schedules import cabinets_due
from cabinets.services.pull import PullError, cabinet_pull
from posinv.models import JobRun, StockLevel, StockMove
from posinv.scheduling import dues_now, scheduler_tick
from posinv.services.leases import lease_acquire
from tests.cabinets.conftest import T0
from tests.fakes.cabinet_vendor import FakeCabinetVendor

pytestmark = pytest.mark.django_db


def stamp(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def add_series(vendor, count: int, start: float = 0, grams=lambda i: 100 + 10 * (i % 20)):
    for i in range(count):
        vendor.add("SN-1", tray_id="T-1", weight_g=str(grams(i)), read_at=stamp(start + i))


def on_hand(cabinet, article) -> Decimal:
    return StockLevel.objects.get(article=article, location=cabinet.location).on_hand


def test_a_pull_applies_every_page_and_keeps_the_cursor(pulling, vendor, screw):
    add_series(vendor, 250)

    result = cabinet_pull(cabinet=pulling)

    assert result.pages == 3
    assert result.counts["received"] == 250
    assert result.counts["applied"] == 250
    assert WeightReading.objects.filter(via="pull").count() == 250
    assert on_hand(pulling, screw) == Decimal("9")  # last: 100 + 10 * (249 % 20) = 190 g
    pulling.refresh_from_db()
    assert pulling.pull_cursor == T0 + timedelta(minutes=249)
    assert pulling.last_pull_error == ""
    assert [r["query"].get("limit") for r in vendor.requests] == ["500", "500", "500"]
    assert all(r["authorization"] == "Bearer k-123" for r in vendor.requests)


def test_the_next_pull_asks_from_the_cursor_and_the_overlap_is_a_duplicate(pulling, vendor, screw):
    add_series(vendor, 3)
    cabinet_pull(cabinet=pulling)
    moves = StockMove.objects.count()
    vendor.add("SN-1", tray_id="T-1", weight_g="150", read_at=stamp(10))

    again = cabinet_pull(cabinet=pulling)

    assert vendor.requests[-1]["query"]["since"] == (T0 + timedelta(minutes=2)).isoformat()
    assert (again.counts["received"], again.counts["duplicate"], again.counts["posted"]) == (2, 1, 1)
    assert StockMove.objects.count() == moves + 1
    assert on_hand(pulling, screw) == Decimal("5")


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (lambda v: v.fail_next(503), 'the vendor answered 503: {"error": "scripted 503"}'),
        (lambda v: v.fail_next(429, retry_after=30), "the vendor is rate limiting us (429); retry after 30 s"),
        (lambda v: setattr(v, "api_key", "rotated"), "the vendor refused the API key (401)"),
        (lambda v: v.garble_next(), "the vendor's answer is not JSON: '<html><body>502 Bad Gateway</body></html>'"),
    ],
)
def test_a_vendor_failure_is_recorded_and_applies_nothing(pulling, vendor, script, message):
    add_series(vendor, 5)
    script(vendor)

    with pytest.raises(PullError) as error:
        cabinet_pull(cabinet=pulling)

    assert str(error.value) == message
    pulling.refresh_from_db()
    assert pulling.last_pull_error == message
    assert pulling.last_pull_at is not None
    assert pulling.pull_cursor is None
    assert WeightReading.objects.count() == 0
    assert StockMove.objects.count() == 0


def test_a_slow_vendor_times_out_and_nothing_is_applied(pulling, vendor):
    add_series(vendor, 5)
    vendor.delay = 1.0
    WeighingCabinet.objects.filter(pk=pulling.pk).update(pull_timeout_seconds=0.3)
    pulling.refresh_from_db()

    with pytest.raises(PullError) as error:
        cabinet_pull(cabinet=pulling)

    assert str(error.value) == "the vendor did not answer within 0.3 s"
    assert WeightReading.objects.count() == 0


def test_a_malformed_page_applies_nothing_of_it_and_earlier_pages_stay(pulling, vendor, screw):
    add_series(vendor, 100)
    vendor.add("SN-1", tray_id="T-1", weight_g="heavy", read_at=stamp(500))

    with pytest.raises(PullError) as error:
        cabinet_pull(cabinet=pulling)

    assert str(error.value) == "malformed answer from the vendor: readings[0].weight_g: 'heavy' is not a number"
    assert WeightReading.objects.count() == 100
    pulling.refresh_from_db()
    assert pulling.pull_cursor == T0 + timedelta(minutes=99)


def test_a_pull_broken_off_between_pages_resumes_where_it_stopped(pulling, vendor, screw):
    add_series(vendor, 150)
    vendor.fail_request(2, 502)

    with pytest.raises(PullError) as error:
        cabinet_pull(cabinet=pulling)
    assert str(error.value) == "the vendor answered 502: bad gateway"
    assert WeightReading.objects.count() == 100

    result = cabinet_pull(cabinet=pulling)

    assert (result.counts["received"], result.counts["duplicate"], result.counts["applied"]) == (51, 1, 50)
    assert WeightReading.objects.count() == 150
    assert on_hand(pulling, screw) == Decimal("9")  # last: 100 + 10 * (149 % 20) = 190 g


def due_now(now) -> list:
    """What the scheduler would run at `now`: the cabinets' schedules through the one due-time rule."""
    return dues_now(cabinets_due(now=now), now=now)


def test_the_schedule_offers_a_pull_once_the_interval_has_passed(pulling):
    now = timezone.now()
    assert [d.key for d in due_now(now)] == ["cabinet-pull:CAB1"]  # never pulled: at once

    WeighingCabinet.objects.filter(pk=pulling.pk).update(last_pull_at=now - timedelta(seconds=599))
    assert due_now(now) == []  # pulled (by a command) 599 s ago, interval 600 s
    assert [d.key for d in due_now(now + timedelta(seconds=2))] == ["cabinet-pull:CAB1"]

    WeighingCabinet.objects.filter(pk=pulling.pk).update(interval_seconds=5)
    assert [d.kwargs for d in due_now(now)] == [{"cabinet_id": pulling.pk}]


def test_a_429_holds_the_schedule_for_the_vendors_retry_after(pulling, vendor):
    vendor.fail_next(429, retry_after=120)
    with pytest.raises(PullError):
        cabinet_pull(cabinet=pulling)
    WeighingCabinet.objects.filter(pk=pulling.pk).update(interval_seconds=5)
    pulling.refresh_from_db()
    assert pulling.pull_blocked_until == pulling.last_pull_at + timedelta(seconds=120)

    assert due_now(pulling.last_pull_at + timedelta(seconds=60)) == []
    assert [d.key for d in due_now(pulling.last_pull_at + timedelta(seconds=121))] == ["cabinet-pull:CAB1"]

    add_series(vendor, 2)
    cabinet_pull(cabinet=pulling)
    pulling.refresh_from_db()
    assert (pulling.pull_blocked_until, pulling.last_pull_error) == (None, "")


def test_a_push_only_cabinet_is_never_pulled(cabinet, tray):
    assert list(cabinets_due(now=timezone.now())) == []


def test_the_scheduler_tick_runs_the_pull_job_and_records_the_run(pulling, vendor, screw):
    add_series(vendor, 3)

    offered = scheduler_tick()

    assert "cabinet-pull:CAB1" in offered
    run = JobRun.objects.get(name="cabinet_pull")
    assert (run.subject, run.status, run.counts["received"], run.counts["pages"]) == ("CAB1", "succeeded", 3, 1)
    assert WeightReading.objects.count() == 3


def test_a_failed_pull_job_is_recorded_as_failed(pulling, vendor):
    vendor.fail_next(500)

    with pytest.raises(PullError):
        cabinet_pull_job(cabinet_id=pulling.pk)

    run = JobRun.objects.get(name="cabinet_pull")
    assert run.status == "failed"
    assert "the vendor answered 500" in run.error


def test_a_pull_job_is_skipped_while_another_worker_holds_the_cabinet_lease(pulling, vendor):
    add_series(vendor, 3)
    assert lease_acquire(key="job:cabinet_pull:CAB1", holder="other-host:1", seconds=60)

    assert cabinet_pull_job(cabinet_id=pulling.pk) is None

    assert JobRun.objects.get(name="cabinet_pull").status == "skipped"
    assert vendor.requests == []
    assert WeightReading.objects.count() == 0


def test_trays_are_untouched_when_a_pull_fails(pulling, vendor, tray):
    vendor.fail_next(503)
    with pytest.raises(PullError):
        cabinet_pull(cabinet=pulling)
    tray.refresh_from_db()
    assert (tray.quantity, tray.weight_g, tray.state) == (None, None, Tray.State.EMPTY)


def test_the_vendors_rate_limit_stops_a_long_pull_and_holds_the_next(cabinet, tray):
    with FakeCabinetVendor(api_key="k", page_max=10, rate_per_minute=2) as vendor:
        WeighingCabinet.objects.filter(pk=cabinet.pk).update(pull_url=vendor.url("SN-1"), pull_api_key="k")
        cabinet.refresh_from_db()
        add_series(vendor, 30)

        with pytest.raises(PullError) as error:
            cabinet_pull(cabinet=cabinet)

    assert str(error.value).startswith("the vendor is rate limiting us (429); retry after ")
    assert WeightReading.objects.count() == 20  # two pages of 10 before the limit
    cabinet.refresh_from_db()
    assert cabinet.pull_cursor == T0 + timedelta(minutes=19)
    assert cabinet.pull_blocked_until > cabinet.last_pull_at
