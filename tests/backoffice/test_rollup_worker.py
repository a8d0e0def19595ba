"""The scheduled rollup through a real `rqworker` process: the scheduler
tick enqueues on Redis, the worker (another process, same PostgreSQL
database) re-rolls the days, and the reports read them."""

from __future__ import annotations

from datetime import date

import django_rq
import pytest
from django.db import connection

from backoffice.models import RollupState, SalesDay
from backoffice.selectors import reports as q
from posinv.models import JobRun
from posinv.scheduling import scheduler_tick
from tests.backoffice.reportdata import WINDOW, report_data
from tests.backoffice.test_rollup import every_report
from tests.support.processes import process_env, started_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def this_database_url() -> str:
    """The test database itself, so the worker sees what the test committed."""
    s = connection.settings_dict
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_the_scheduled_rollup_runs_in_a_real_worker_and_the_reports_read_it(rq_mode, settings):
    settings.POSINV_REPORTS_ROLLUP_MINUTES = 5
    report_data()
    from_lines = every_report(today=date(2026, 5, 10))

    assert "reports-rollup" in scheduler_tick()
    assert "reports-rollup" in scheduler_tick()  # offered again while waiting...
    assert django_rq.get_queue("low").job_ids.count("posinv-reports-rollup") == 1  # ...but queued once
    with started_worker(env=process_env(database=this_database_url()), queues=("low",)) as worker:
        run = wait_until(
            lambda: JobRun.objects.filter(name="reports-rollup", status__in=["succeeded", "failed"]).first(),
            timeout=60,
            message="the rollup job to finish",
        )
        assert run.status == "succeeded", worker.log()

    assert run.counts["rebuilt"] is True
    assert RollupState.objects.get().complete_through >= WINDOW[1]
    assert SalesDay.objects.count() == 7
    assert q._split(q.window_make(date_from=WINDOW[0], date_to=WINDOW[1]))[1] is None  # all from the rollup
    assert every_report(today=date(2026, 5, 10)) == from_lines
