"""The scheduled rollup through a real `rqworker` process: the scheduler
tick enqueues on Redis, the worker (another process, same PostgreSQL
database) re-rolls the days, and the reports read them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import django_rq
import pytest
from django.db import connection
from django.db.models import Count

from backoffice.models import ReceiptsDay, RollupState, SalesDay
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


def test_concurrent_runs_and_sales_being_recorded_leave_each_day_rolled_once(db):
    """Two incremental runs at once (serialised by the state row lock) while
    a till keeps committing receipts: no day's rows are doubled, and after
    a last run the rollup gives the figures of the lines."""
    import threading

    from django.db import connections

    from backoffice.services.rollup import sales_rollup_rebuild, sales_rollup_refresh
    from pos.models import CashRegister
    from tests.backoffice.factories import sell

    report_data()
    sales_rollup_rebuild()
    register = CashRegister.objects.get(code="R1")
    errors: list[BaseException] = []

    def in_thread(func):
        def run():
            try:
                func()
            except BaseException as exc:  # reported to the test below
                errors.append(exc)
            finally:
                connections.close_all()

        return threading.Thread(target=run)

    def till():
        for n in range(15):
            sell(register=register, at=datetime(2026, 5, 2 + n % 3, 15, tzinfo=UTC), items=[("B", "1", "3.00")])

    threads = [in_thread(till), in_thread(sales_rollup_refresh), in_thread(sales_rollup_refresh)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    doubled = (
        SalesDay.objects.values("day", "location", "article").annotate(n=Count("id")).filter(n__gt=1).count(),
        ReceiptsDay.objects.values("day", "location").annotate(n=Count("id")).filter(n__gt=1).count(),
    )
    assert doubled == (0, 0)
    sales_rollup_refresh()
    w = q.window_make(date_from=WINDOW[0], date_to=WINDOW[1])
    assert ReceiptsDay.objects.filter(day__in=[date(2026, 5, 2), date(2026, 5, 3), date(2026, 5, 4)]).count() == 3
    assert [(r["sku"], r["quantity"], r["revenue"]) for r in q.articles_ranked(window=w)] == [
        ("B", D("20.000"), D("60.00")),
        ("A", D("13.000"), D("25.00")),
        ("C", D("3.000"), D("4.50")),
    ]
    assert [(r["period"], r["receipts"]) for r in q.sales_by_period(window=w)] == [
        (date(2026, 5, 2), 6),
        (date(2026, 5, 3), 5),
        (date(2026, 5, 4), 5),
        (date(2026, 5, 5), 1),
        (date(2026, 5, 5), 1),
    ]
