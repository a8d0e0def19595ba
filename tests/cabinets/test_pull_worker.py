"""The scheduled pull through a real `rqworker` process: the scheduler tick
enqueues on Redis, the worker (another process, same PostgreSQL database)
fetches the fake vendor over HTTP and posts the counts."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import django_rq
import pytest
from django.db import connection

from cabinets.models import Tray, WeightReading
from cabinets.services.provisioning import cabinet_create
from posinv.models import JobRun, StockLevel
from posinv.scheduling import scheduler_tick
from tests.cabinets.conftest import T0
from tests.factories import make_article
from tests.fakes.cabinet_vendor import FakeCabinetVendor
from tests.support.processes import process_env, started_command, started_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def this_database_url() -> str:
    """The test database itself, so the worker sees what the test committed."""
    s = connection.settings_dict
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_the_scheduled_pull_runs_in_a_real_worker_and_posts_the_counts(rq_mode):
    screw = make_article(sku="SCR-W", unit_weight_g=Decimal("10"))
    with FakeCabinetVendor(api_key="k-9", page_max=50) as vendor:
        cabinet, _ = cabinet_create(
            code="CABW", location_code="CABW-LOC", pull_url=vendor.url("SN-W"), pull_api_key="k-9",
            interval_seconds=5,
        )
        Tray.objects.create(cabinet=cabinet, tray_id="T-1", article=screw, tare_g=Decimal("100"))
        for minute in range(120):
            read_at = (T0 + timedelta(minutes=minute)).isoformat()
            vendor.add("SN-W", tray_id="T-1", weight_g=str(400 - 2 * minute), read_at=read_at)

        assert "cabinet-pull:CABW" in scheduler_tick()
        assert "cabinet-pull:CABW" in scheduler_tick()  # offered again while waiting...
        queued = django_rq.get_queue("default").job_ids
        assert queued.count("posinv-cabinet-pull-CABW") == 1  # ...but queued once

        with started_worker(env=process_env(database=this_database_url()), queues=("default", "high")) as worker:
            run = wait_until(
                lambda: JobRun.objects.filter(name="cabinet_pull", status__in=["succeeded", "failed"]).first(),
                timeout=60, message="the pull job to finish",
            )
            assert run.status == "succeeded", worker.log()

    assert (run.subject, run.counts["received"], run.counts["pages"]) == ("CABW", 120, 3)
    assert JobRun.objects.filter(name="cabinet_pull").count() == 1
    assert WeightReading.objects.filter(via="pull").count() == 120
    assert len([r for r in vendor.requests if r["path"] == "/v2/cabinets/SN-W/readings"]) == 3
    # the newest reading: 400 - 2 * 119 = 162 g -> 6.2 units -> 6
    assert StockLevel.objects.get(article=screw, location=cabinet.location).on_hand == Decimal("6")


def test_a_running_scheduler_pulls_every_interval_without_anyone_asking(rq_mode):
    screw = make_article(sku="SCR-S", unit_weight_g=Decimal("10"))
    with FakeCabinetVendor(api_key="k-s") as vendor:
        cabinet, _ = cabinet_create(
            code="CABS", location_code="CABS-LOC", pull_url=vendor.url("SN-S"), pull_api_key="k-s",
            interval_seconds=2,
        )
        Tray.objects.create(cabinet=cabinet, tray_id="T-1", article=screw, tare_g=Decimal("100"))
        vendor.add("SN-S", tray_id="T-1", weight_g="300", read_at=T0.isoformat())
        env = process_env(database=this_database_url())
        level = lambda: StockLevel.objects.filter(article=screw, location=cabinet.location).first()  # noqa: E731

        with started_worker(env=env, queues=("default", "high")) as worker, \
                started_command("run_scheduler", "--interval", "0.5", env=env, name="scheduler"):
            wait_until(lambda: level() and level().on_hand == Decimal("20"), timeout=60,
                       message="the first scheduled pull")
            vendor.add("SN-S", tray_id="T-1", weight_g="250", read_at=(T0 + timedelta(minutes=10)).isoformat())
            wait_until(lambda: level().on_hand == Decimal("15"), timeout=60,
                       message=f"the next scheduled pull; worker log:\n{worker.log()}")

    runs = list(JobRun.objects.filter(name="cabinet_pull", subject="CABS").values_list("status", flat=True))
    assert len(runs) >= 2 and set(runs) == {"succeeded"}
    assert WeightReading.objects.filter(cabinet=cabinet, via="pull").count() == 2
