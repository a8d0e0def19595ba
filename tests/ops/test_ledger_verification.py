"""The ledger's last verification: recorded as a job run (by the schedule,
the command or the dashboard's button) and shown red / amber / green."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ops.selectors import ledger_health_get
from posinv.models import JobRun, StockLevel
from posinv.scheduling import scheduler_tick
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article

pytestmark = pytest.mark.django_db


def _stock(store, sku="A-1", qty="5"):
    make_article(sku=sku)
    stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"in:{sku}", sku=sku, location_id=store.pk,
                                     quantity=Decimal(qty))], origin=StockOrigin("user", "clerk"))


def test_the_command_records_a_clean_run_and_the_dashboard_turns_green(store, capsys):
    _stock(store)
    before = ledger_health_get(now=timezone.now())

    call_command("verify_ledger")

    run = JobRun.objects.get(name="verify_ledger")
    assert (run.status, run.subject, run.counts) == ("succeeded", "ledger", {"drifting": 0})
    assert (before.status, before.reason) == ("amber", "never verified")
    after = ledger_health_get(now=timezone.now())
    assert (after.status, after.reason, after.drifting) == ("green", "every level equals its moves", 0)
    assert "ledger ok: every level equals the sum of its moves" in capsys.readouterr().out


def test_drift_is_recorded_as_a_failed_run_the_command_exits_non_zero_and_the_dashboard_is_red(store):
    _stock(store)
    # Corrupt a level behind the ledger's back, as a bad manual SQL fix would.
    StockLevel.objects.filter(article__sku="A-1").update(on_hand=Decimal("7"))

    with pytest.raises(CommandError) as refused:
        call_command("verify_ledger")

    assert str(refused.value) == "1 drifting (article, location) pairs"
    run = JobRun.objects.get(name="verify_ledger")
    assert (run.status, run.counts["drifting"]) == ("failed", 1)
    assert "1 drifting pairs: A-1 @ S1: on_hand 7.000 != moves 5.000" in run.error
    health = ledger_health_get(now=timezone.now())
    assert (health.status, health.reason) == ("red", "1 drifting pairs")


def test_a_verification_older_than_a_day_is_amber(store):
    call_command("verify_ledger")
    JobRun.objects.filter(name="verify_ledger").update(started_at=timezone.now() - timedelta(hours=27))

    health = ledger_health_get(now=timezone.now())

    assert (health.status, health.reason) == ("amber", "not verified for over 24 h")


def test_the_scheduler_runs_the_verification_once_a_period(store, settings):
    settings.POSINV_VERIFY_LEDGER_HOURS = 24
    _stock(store)

    first = scheduler_tick()
    second = scheduler_tick()

    assert "verify-ledger" in first and "verify-ledger" not in second
    assert JobRun.objects.filter(name="verify_ledger", status="succeeded").count() == 1
    later = scheduler_tick(now=timezone.now() + timedelta(hours=25))
    assert "verify-ledger" in later


def test_the_dashboard_button_runs_it_now(admin_client, store):
    answer = admin_client.post("/ops/health/verify-ledger/", follow=True)

    assert answer.redirect_chain == [("/ops/health/", 302)]
    assert "Ledger verification started" in answer.content.decode()
    assert JobRun.objects.filter(name="verify_ledger", status="succeeded").count() == 1
    assert admin_client.get("/ops/health/verify-ledger/").status_code == 405


def test_the_job_records_drift_on_the_run_without_crashing_the_worker(store):
    from ops.jobs import ledger_verify_job

    _stock(store)
    StockLevel.objects.filter(article__sku="A-1").update(on_hand=Decimal("4"))

    result = ledger_verify_job()

    assert result == {"drifting": 1}
    run = JobRun.objects.get(name="verify_ledger")
    assert (run.status, run.counts) == ("failed", {"drifting": 1})
    assert "A-1 @ S1: on_hand 4.000 != moves 5.000" in run.error
