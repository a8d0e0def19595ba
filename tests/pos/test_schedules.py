"""What the pos app asks the scheduler to run, on the main system and on a
register node, and a tick running a pull job end to end in-process."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pos.models import CashRegister
from pos.schedules import pos_due
from pos.services.apply import entries_advance, entries_receive
from pos.services.transfer import register_token_rotate
from posinv.models import JobRun
from posinv.scheduling import scheduler_tick
from tests.pos.factories import make_register, receipt_entries

pytestmark = pytest.mark.django_db


def keys(now=None) -> list[str]:
    return [due.key for due in pos_due(now=now or timezone.now())]


def test_main_pulls_each_due_pull_register_and_never_a_push_register(store):
    make_register(code="R1", location=store)
    pull = make_register(code="R2", location=store, sync_type="pull", node_url="http://127.0.0.1:9",
                         interval_seconds=300)
    make_register(code="R3", location=store, sync_type="pull", node_url="http://127.0.0.1:9", active=False)

    assert keys() == ["register-pull:R2"]
    CashRegister.objects.filter(pk=pull.pk).update(last_attempt_at=timezone.now())
    assert keys() == []
    assert keys(timezone.now() + timedelta(seconds=301)) == ["register-pull:R2"]


def test_failed_entries_are_retried_every_15_minutes(store, article):
    register = make_register(location=store)
    entries_receive(register_id=register.pk, entries=receipt_entries(1, "R1-1", [("NEW", "1", "1.00")]))

    assert keys() == ["entries-retry:R1"]
    JobRun.objects.create(name="entries_retry", subject="R1", status="succeeded")
    assert keys() == []
    assert keys(timezone.now() + timedelta(minutes=16)) == ["entries-retry:R1"]


def test_waiting_entries_right_behind_the_watermark_are_advanced(store, article, monkeypatch):
    # One request takes on at most WAITING_CHUNK freed entries; the rest
    # are left to the advance job.
    monkeypatch.setattr("pos.services.apply.WAITING_CHUNK", 2)
    register = make_register(location=store)
    entries_receive(register_id=register.pk, entries=receipt_entries(2, "R1-1", [("A-1", "1", "1.00")] * 3))
    assert keys() == []  # entry 1 is missing: nothing can advance

    result = entries_receive(register_id=register.pk, entries=receipt_entries(1, "R1-0", [])[:1])

    assert (result.released, result.last_applied_entry_no) == (2, 3)
    assert keys() == ["entries-advance:R1"]
    assert entries_advance(register_id=register.pk) == 2
    assert keys() == ["entries-advance:R1"]
    assert entries_advance(register_id=register.pk) == 1
    assert keys() == []
    register.refresh_from_db()
    assert register.last_applied_entry_no == 6


def test_node_pushes_every_interval_but_not_while_backing_off(settings, store):
    settings.POSINV_NODE = "register"
    settings.POSINV_REGISTER_CODE = "R1"
    assert keys() == ["register-push:R1"]  # not set up yet: the push fetches the settings
    register = make_register(location=store, interval_seconds=30)
    CashRegister.objects.filter(pk=register.pk).update(last_attempt_at=timezone.now())
    assert keys() == []
    assert keys(timezone.now() + timedelta(seconds=31)) == ["register-push:R1"]
    CashRegister.objects.filter(pk=register.pk).update(retry_after=timezone.now() + timedelta(minutes=5))
    assert keys(timezone.now() + timedelta(seconds=31)) == []


def test_a_scheduler_tick_runs_the_pull_job_and_records_an_unreachable_node(store):
    pull = make_register(code="R2", location=store, sync_type="pull", node_url="http://127.0.0.1:9")
    register_token_rotate(register_id=pull.pk)

    offered = scheduler_tick()

    assert "register-pull:R2" in offered
    run = JobRun.objects.get(name="register_pull")
    # Recorded as failed, with the reason (not "succeeded" while nothing moved).
    assert (run.subject, run.status) == ("R2", "failed")
    assert "Connection refused" in run.counts["unreachable"] or "Max retries" in run.counts["unreachable"]
    assert "NodeUnreachable" in run.error
    assert CashRegister.objects.get(code="R2").last_error.startswith("GET outbox: ")
