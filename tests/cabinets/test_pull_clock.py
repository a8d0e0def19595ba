"""A cabinet with a wrong clock must not stop the vendor pull: a reading
rejected for its read time never moves the pull cursor nor refreshes "last
reading", the true readings after it are fetched, staff see the cursor and
the rejected readings and can reset the cursor, and health says so."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from cabinets.models import WeighingCabinet, WeightReading
from cabinets.services.pull import cabinet_pull
from ops.selectors import sync_problems
from posinv.models import StockLevel

pytestmark = pytest.mark.django_db
NEXT_YEAR = timedelta(days=365)


def iso(when) -> str:
    return when.isoformat().replace("+00:00", "Z")


def on_hand(cabinet, article) -> Decimal:
    return StockLevel.objects.get(article=article, location=cabinet.location).on_hand


def cabinet_problems(**kwargs) -> list[dict]:
    return [p for p in sync_problems(**kwargs)["problems"] if p["check"] == "cabinet_readings"]


def test_true_readings_after_one_from_next_year_are_still_fetched(pulling, vendor, screw):
    base = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    vendor.add("SN-1", tray_id="T-1", weight_g="200", read_at=iso(base))
    vendor.add("SN-1", tray_id="T-1", weight_g="900", read_at=iso(base + NEXT_YEAR))  # a broken clock

    first = cabinet_pull(cabinet=pulling)

    assert (first.counts["posted"], first.counts["rejected"]) == (1, 1)
    pulling.refresh_from_db()
    assert pulling.pull_cursor == base  # not next year
    vendor.add("SN-1", tray_id="T-1", weight_g="250", read_at=iso(base + timedelta(minutes=20)))

    second = cabinet_pull(cabinet=pulling)

    assert vendor.requests[-1]["query"]["since"] == base.isoformat()
    assert (second.counts["duplicate"], second.counts["posted"], second.counts["rejected"]) == (1, 1, 1)
    assert on_hand(pulling, screw) == Decimal("15")
    pulling.refresh_from_db()
    assert pulling.pull_cursor == base + timedelta(minutes=20)
    # the bad reading is kept once to show why, not once per pull
    assert WeightReading.objects.filter(outcome="rejected").count() == 1


def test_rejected_readings_do_not_count_as_a_reading_and_health_says_why(pulling, vendor, admin_client):
    vendor.add("SN-1", tray_id="T-1", weight_g="900", read_at=iso(timezone.now() + NEXT_YEAR))

    cabinet_pull(cabinet=pulling)

    pulling.refresh_from_db()
    assert (pulling.last_reading_at, pulling.pull_cursor) == (None, None)
    assert pulling.last_rejected_reason.startswith("read time ") and "is in the future" in pulling.last_rejected_reason
    [problem] = cabinet_problems()
    assert (problem["subject"], problem["status"]) == ("CAB1", "amber")
    assert problem["reason"].startswith("readings rejected: read time ")
    listed = admin_client.get(problem["link"]).content.decode()
    assert "is in the future" in listed
    page = admin_client.get("/ops/health/").content.decode()
    assert 'data-cabinet="CAB1" data-status="amber"' in page
    assert "readings rejected: read time" in page
    # over once two intervals pass without another rejection
    assert cabinet_problems(now=timezone.now() + timedelta(seconds=2 * pulling.interval_seconds + 1)) == []


def test_staff_see_a_cursor_ahead_of_the_clock_and_reset_it(pulling, vendor, screw, admin_client):
    base = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    vendor.add("SN-1", tray_id="T-1", weight_g="200", read_at=iso(base))
    cabinet_pull(cabinet=pulling)
    # as the pull left it before this fix: every true reading after it was never fetched
    WeighingCabinet.objects.filter(pk=pulling.pk).update(pull_cursor=base + NEXT_YEAR)
    [problem] = cabinet_problems()
    assert problem["status"] == "red" and "ahead of our clock" in problem["reason"]
    page = admin_client.get(f"/admin/cabinets/weighingcabinet/{pulling.pk}/change/").content.decode()
    assert "ahead of our clock" in page and "the rejected readings" in page

    answer = admin_client.post("/admin/cabinets/weighingcabinet/",
                               {"action": "reset_pull_cursor", "_selected_action": [pulling.pk]}, follow=True)

    assert "CAB1: the next pull asks from" in answer.content.decode()
    pulling.refresh_from_db()
    assert pulling.pull_cursor == base
    assert cabinet_problems() == []
    vendor.add("SN-1", tray_id="T-1", weight_g="300", read_at=iso(base + timedelta(minutes=10)))
    cabinet_pull(cabinet=pulling)
    assert on_hand(pulling, screw) == Decimal("20")


def test_resetting_the_cursor_needs_the_change_permission(pulling, client, django_user_model):
    WeighingCabinet.objects.filter(pk=pulling.pk).update(pull_cursor=timezone.now() + NEXT_YEAR)
    viewer = django_user_model.objects.create_user(username="viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_weighingcabinet"))
    client.force_login(viewer)

    client.post("/admin/cabinets/weighingcabinet/",
                {"action": "reset_pull_cursor", "_selected_action": [pulling.pk]}, follow=True)

    pulling.refresh_from_db()
    assert pulling.pull_cursor > timezone.now()
