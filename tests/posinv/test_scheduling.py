"""The one rule for "when is this schedule due next" (posinv/scheduling.py)
and how job runs feed it (posinv/services/runs.py): interval after a
success, exponential backoff after failures, never while held for a person,
and a lease-skipped run counted instead of written every tick."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from posinv.models import JobRun, ScheduleState
from posinv.scheduling import Due, backoff_seconds, dues_now, schedule_due_at, scheduler_tick
from posinv.services.leases import lease_acquire
from posinv.services.runs import job_run, schedule_release

pytestmark = pytest.mark.django_db

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_backoff_doubles_per_failure_from_the_interval_up_to_the_documented_cap(settings):
    settings.POSINV_SCHEDULE_BACKOFF_MAX_SECONDS = 3600
    assert [backoff_seconds(60, n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_seconds(60, 0) == 60
    # A daily job is never retried sooner than daily after failures, nor later.
    assert [backoff_seconds(86400, n) for n in (1, 2, 50)] == [86400, 86400, 86400]
    assert backoff_seconds(2, 10**9) == 3600  # no overflow however long it failed


def state(**fields) -> ScheduleState:
    return ScheduleState(key="k", job="j", subject="s", interval_seconds=60, **fields)


def test_the_due_time_follows_the_last_outcome():
    assert schedule_due_at(state(), 60) <= T  # never ran: at once
    succeeded = state(last_outcome="succeeded", last_started_at=T, last_finished_at=T + timedelta(seconds=5))
    assert schedule_due_at(succeeded, 60) == T + timedelta(seconds=60)  # success: from its start
    failed = state(last_outcome="failed", failures_in_row=3, last_started_at=T,
                   last_finished_at=T + timedelta(seconds=5))
    assert schedule_due_at(failed, 60) == T + timedelta(seconds=5 + 240)  # 3rd failure: 4 intervals after it
    held = state(last_outcome="held", held_since=T, last_started_at=T, last_finished_at=T)
    assert schedule_due_at(held, 60) is None  # waits for a person, however long
    skipped = state(last_outcome="succeeded", last_started_at=T, last_skipped_at=T + timedelta(seconds=70))
    assert schedule_due_at(skipped, 60) == T + timedelta(seconds=130)
    assert schedule_due_at(succeeded, 60, not_before=T + timedelta(hours=1)) == T + timedelta(hours=1)


def due(interval=60, **extra) -> Due:
    return Due(key="thing:X", func="x.y", interval_seconds=interval, run=("thing", "X"), **extra)


def offered(now) -> bool:
    return bool(dues_now([due()], now=now))


def test_a_failing_job_backs_off_and_a_success_resets_it():
    now = timezone.now()
    assert offered(now)
    for failures in range(1, 5):
        with pytest.raises(RuntimeError), job_run("thing", "X") as counts:
            counts["calls"] = 1
            raise RuntimeError("connection refused")
        wait = 60 * 2 ** (failures - 1)
        current = timezone.now()
        assert not offered(current + timedelta(seconds=wait - 2)), failures
        assert offered(current + timedelta(seconds=wait + 1)), failures
    row = ScheduleState.objects.get(key="thing:X")
    assert (row.failures_in_row, row.last_outcome, row.last_error) == (4, "failed", "RuntimeError: connection refused")

    with job_run("thing", "X") as counts:
        counts["calls"] = 1
    row.refresh_from_db()
    assert (row.failures_in_row, row.last_outcome, row.last_error) == (0, "succeeded", "")
    assert not offered(timezone.now() + timedelta(seconds=58))
    assert offered(timezone.now() + timedelta(seconds=61))


def test_a_failure_reported_without_raising_backs_off_too():
    offered(timezone.now())
    with job_run("thing", "X") as counts:
        counts.fail("the peer is unreachable")
    run = JobRun.objects.get(name="thing")
    assert (run.status, run.error) == ("failed", "the peer is unreachable")
    assert ScheduleState.objects.get(key="thing:X").failures_in_row == 1


def test_a_held_run_waits_for_a_person_and_a_release_makes_it_due_at_once():
    offered(timezone.now())
    with job_run("thing", "X") as counts:
        counts.hold("4 of 5 products would drop to zero; check the feed and confirm")
    assert JobRun.objects.get(name="thing").status == "held"
    for days in (0, 1, 30):
        assert not offered(timezone.now() + timedelta(days=days, seconds=1))

    assert schedule_release(state_ids=[ScheduleState.objects.get(key="thing:X").pk], released_by="anna") == 1
    assert offered(timezone.now())


def test_a_run_skipped_for_a_held_lease_is_counted_not_written_and_waits_an_interval():
    offered(timezone.now())
    assert lease_acquire(key="job:thing:X", holder="other-host:1", seconds=600)
    for _ in range(5):
        with job_run("thing", "X", lease_seconds=60) as counts:
            assert counts is None
    assert JobRun.objects.filter(name="thing").count() == 0
    row = ScheduleState.objects.get(key="thing:X")
    assert row.skipped_runs == 5
    assert not offered(timezone.now() + timedelta(seconds=50))
    assert offered(timezone.now() + timedelta(seconds=61))


def test_a_schedule_run_outside_the_scheduler_ends_its_backoff():
    offered(timezone.now())
    with pytest.raises(RuntimeError), job_run("thing", "X"):
        raise RuntimeError("down")
    with pytest.raises(RuntimeError), job_run("thing", "X"):
        raise RuntimeError("down")
    ran_by_command = timezone.now() + timedelta(seconds=1)
    assert dues_now([due(last_run_at=ran_by_command)], now=ran_by_command + timedelta(seconds=61))
    row = ScheduleState.objects.get(key="thing:X")
    assert (row.failures_in_row, row.last_outcome) == (0, "succeeded")


def test_staff_see_schedules_and_release_one_only_with_the_permission(client, django_user_model):
    offered(timezone.now())
    with job_run("thing", "X") as counts:
        counts.hold("check the feed")
    row = ScheduleState.objects.get(key="thing:X")
    clerk = django_user_model.objects.create_user(username="clerk2", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_schedulestate"))
    client.force_login(clerk)

    page = client.get("/admin/posinv/schedulestate/").content.decode()
    assert "thing:X" in page and "held: waits for a person" in page and "check the feed" in page
    client.post("/admin/posinv/schedulestate/", {"action": "release", "_selected_action": [row.pk]})
    assert ScheduleState.objects.get(pk=row.pk).held_since is not None

    clerk.user_permissions.add(Permission.objects.get(codename="release_schedulestate"))
    answer = client.post("/admin/posinv/schedulestate/", {"action": "release", "_selected_action": [row.pk]},
                         follow=True)
    assert "1 schedules released" in answer.content.decode()
    assert ScheduleState.objects.get(pk=row.pk).held_since is None
    assert offered(timezone.now())


def test_a_tick_forgets_schedules_no_provider_offers_any_more(settings):
    settings.POSINV_SCHEDULE_PROVIDERS = []
    ScheduleState.objects.create(key="store-stock:gone", job="store_stock", subject="gone", failures_in_row=7,
                                 last_outcome="failed")
    scheduler_tick()
    assert not ScheduleState.objects.exists()
