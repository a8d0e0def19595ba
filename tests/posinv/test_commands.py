"""Management commands of the core: verify_ledger, create_api_token,
demo_data, dispatch_changes, scheduler_tick and run_scheduler."""

from __future__ import annotations

import io
import signal
import time
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from posinv.models import Article, Location, Price, StockChange, StockLevel, StockMove
from posinv.scheduling import Due
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_find
from tests.factories import make_article, make_location
from tests.support.processes import (
    create_database,
    database_url,
    drop_database,
    manage,
    process_env,
    started_command,
    wait_until,
)

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def post(sku: str, location: str, qty: str, key: str):
    stock_moves_post(
        moves=[
            MoveSpec(kind="adjustment", idempotency_key=key, quantity=Decimal(qty), sku=sku, location_code=location)
        ],
        origin=StockOrigin(kind="user", code="clerk"),
    )


def test_verify_ledger_passes_on_a_true_ledger(article, store):
    post("A-1", "S1", "5", "k1")
    post("A-1", "S1", "-2", "k2")

    assert run("verify_ledger").strip() == "ledger ok: every level equals the sum of its moves"


def test_verify_ledger_prints_drifting_pairs_and_fails(article, store):
    post("A-1", "S1", "5", "k1")
    make_article(sku="B-1")
    make_location(code="S2")
    post("B-1", "S2", "3", "k2")
    # Corruption from outside the ledger (a hand-written UPDATE, a lost row):
    StockLevel.objects.filter(article=article).update(on_hand=Decimal("4"))
    StockLevel.objects.filter(article__sku="B-1").delete()
    out = io.StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("verify_ledger", stdout=out)

    assert str(failed.value) == "2 drifting (article, location) pairs"
    assert out.getvalue().splitlines() == [
        "A-1 @ S1: on_hand 4 != sum of moves 5 (difference -1)",
        "B-1 @ S2: on_hand 0 != sum of moves 3 (difference -3)",
    ]


def test_create_api_token_prints_a_working_token_and_rotates(staff_user):
    first = run("create_api_token", "clerk").strip()
    second = run("create_api_token", "clerk").strip()

    assert token_find(first) is None
    assert token_find(second).user == staff_user


def test_create_api_token_refuses_unknown_and_non_staff_users(db):
    get_user_model().objects.create_user(username="guest", password="x")

    with pytest.raises(CommandError, match="no user 'ghost'"):
        run("create_api_token", "ghost")
    with pytest.raises(CommandError, match="user 'guest' is not an active staff user"):
        run("create_api_token", "guest")


def test_demo_data_is_idempotent_and_prints_the_admin_password_once(settings):
    settings.POSINV_DEMO_LOADERS = []
    first = run("demo_data")
    counts = (Location.objects.count(), Article.objects.count(), Price.objects.count(), StockMove.objects.count())
    second = run("demo_data")

    password = first.split("password '")[1].split("'")[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert "password" not in second.replace("(password unchanged)", "")
    assert "0 stock moves posted" in second
    assert counts == (5, 12, 24, 48)
    assert (
        Location.objects.count(),
        Article.objects.count(),
        Price.objects.count(),
        StockMove.objects.count(),
    ) == counts
    assert Article.objects.get(sku="SCR-4x40").unit_weight_g == Decimal("3.2")
    assert StockLevel.objects.get(article__sku="NUT-M8", location__code="CAB1").on_hand == Decimal("250")


DEMO_CALLS: list[str] = []


def demo_loader_for_test():
    DEMO_CALLS.append("called")


def test_demo_data_calls_every_app_demo_loader(settings):
    settings.POSINV_DEMO_LOADERS = ["tests.posinv.test_commands.demo_loader_for_test"]
    DEMO_CALLS.clear()

    out = run("demo_data")

    assert DEMO_CALLS == ["called"]
    assert "1 app loaders run" in out


def test_dispatch_changes_hands_the_outbox_to_consumers(article, store, settings):
    settings.POSINV_CHANGE_CONSUMERS = []
    settings.POSINV_JOBS_INLINE = False  # nothing dispatches on commit: the outbox waits
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("posinv.services.changes.changes_wake", lambda: None)
        post("A-1", "S1", "5", "k1")
    assert StockChange.objects.count() == 1
    settings.POSINV_JOBS_INLINE = True

    assert run("dispatch_changes").strip() == "1 changes dispatched"
    assert not StockChange.objects.exists()


JOB_CALLS: list[dict] = []


def due_for_test(*, now):
    yield Due(key="test-job:X", func="tests.posinv.test_commands.job_for_test", kwargs={"code": "X"})


def job_for_test(*, code):
    JOB_CALLS.append({"code": code})


def test_scheduler_tick_and_run_scheduler_once_enqueue_what_is_due(settings):
    settings.POSINV_SCHEDULE_PROVIDERS = ["tests.posinv.test_commands.due_for_test"]
    JOB_CALLS.clear()

    assert run("scheduler_tick").splitlines() == ["test-job:X", "1 due"]
    assert run("run_scheduler", "--once").strip() == "tick: 1 due test-job:X"
    assert JOB_CALLS == [{"code": "X"}, {"code": "X"}]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_run_scheduler_loops_until_sigterm_and_stops_cleanly():
    env = process_env(database=database_url("a_sched"), redis=False, POSINV_SCHEDULER_TICK_SECONDS="0.2")
    create_database(env["DATABASE_URL"])
    try:
        manage("migrate", "--noinput", env=env)
        with started_command("run_scheduler", env=env, name="scheduler") as child:
            wait_until(lambda: "a tick every 0.2s" in child.log(), timeout=30, message="scheduler to start")
            time.sleep(1.5)  # several 0.2 s intervals (a fresh database has little due)
            child.popen.send_signal(signal.SIGTERM)
            code = child.popen.wait(timeout=15)
            log = child.log()
        assert code == 0, log
        ticks = int(log.split("scheduler stopped after ")[1].split()[0])
        assert ticks >= 2, log
    finally:
        drop_database(env["DATABASE_URL"])


def test_verify_ledger_sees_no_drift_in_fractional_quantities(article, store):
    post("A-1", "S1", "-0.06", "k1")
    stock_moves_post(
        moves=[MoveSpec(kind="count", idempotency_key="c1", counted=Decimal("0.006"), sku="A-1", location_code="S1")],
        origin=StockOrigin(kind="cabinet", code="CAB"),
    )
    post("A-1", "S1", "0.1", "k2")

    assert run("verify_ledger").strip() == "ledger ok: every level equals the sum of its moves"


def due_failing_then_fine(*, now):
    yield Due(key="fails", func="tests.posinv.test_commands.job_that_fails")
    yield Due(key="test-job:Y", func="tests.posinv.test_commands.job_for_test", kwargs={"code": "Y"})


def job_that_fails():
    raise RuntimeError("vendor down")


def test_a_failing_inline_job_does_not_stop_the_other_due_jobs(settings):
    settings.POSINV_SCHEDULE_PROVIDERS = ["tests.posinv.test_commands.due_failing_then_fine"]
    JOB_CALLS.clear()

    assert run("scheduler_tick").splitlines() == ["test-job:Y", "1 due"]
    assert JOB_CALLS == [{"code": "Y"}]
