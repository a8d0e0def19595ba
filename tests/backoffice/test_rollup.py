"""The daily sales rollup (backoffice/services/rollup.py) and the reports
reading it: the figures are the same whether a day comes from the rollup or
from the raw lines (tests/backoffice/reportdata.py; the exact figures are
worked out in test_reports.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from backoffice.jobs import ROLLUP_JOB, reports_rollup_job
from backoffice.models import ReceiptsDay, RollupState, SalesDay, SalesMonth, SalesToMonth
from backoffice.schedules import backoffice_due
from backoffice.selectors import reports as q
from backoffice.services.rollup import sales_rollup_rebuild, sales_rollup_refresh
from pos.models import CashRegister, Receipt
from posinv.models import JobRun
from posinv.scheduling import dues_now, scheduler_tick
from tests.backoffice.factories import sell
from tests.backoffice.reportdata import WINDOW, report_data


def every_report(today: date) -> dict:
    """Every figure of every report page over the test window and a longer one."""
    w = q.window_make(date_from=WINDOW[0], date_to=WINDOW[1])
    wide = q.window_make(date_from=date(2026, 4, 1), date_to=date(2026, 5, 31))
    mixed = q.window_make(date_from=date(2026, 4, 20), date_to=date(2026, 5, 3))
    s1 = q.Location.objects.get(code="S1").pk
    one = q.window_make(date_from=date(2026, 4, 1), date_to=date(2026, 5, 31), location_id=s1)
    out = {}
    for name, window in {"w": w, "wide": wide, "mixed": mixed, "one": one}.items():
        out[name] = {
            "day": q.sales_by_period(window=window, granularity="day"),
            "week": q.sales_by_period(window=window, granularity="week"),
            "month": q.sales_by_period(window=window, granularity="month"),
            "comparison": q.sales_comparison(window=window),
            "top": q.articles_ranked(window=window),
            "bottom": q.articles_ranked(window=window, bottom=True),
            "category": q.sales_by_category(window=window),
            "sell_through": q.sell_through(window=window),
            "margins": q.margins(window=window),
            "cover": q.stock_cover(window=window, today=today),
        }
    return out


@pytest.fixture
def history(db):
    s1, s2 = report_data()
    # The history was recorded long ago: an incremental run re-rolls only
    # the days of receipts recorded since the previous run.
    Receipt.objects.update(recorded_at=timezone.now() - timedelta(days=30))
    return s1, s2


@pytest.mark.parametrize(
    ("rolled_at", "complete_through"),
    [
        # Every day of every window from the rollup.
        (datetime(2026, 6, 1, 8, tzinfo=UTC), date(2026, 5, 31)),
        # Up to May 3 from the rollup, May 4 on from the lines.
        (datetime(2026, 5, 4, 8, tzinfo=UTC), date(2026, 5, 3)),
        # The rollup ends before the windows: all from the lines.
        (datetime(2026, 3, 2, 8, tzinfo=UTC), date(2026, 3, 1)),
    ],
)
def test_every_report_shows_the_same_figures_from_the_rollup_as_from_the_lines(history, rolled_at, complete_through):
    from_lines = every_report(today=date(2026, 5, 10))
    assert from_lines["w"]["top"][0] == {
        "sku": "A",
        "name": "Apple",
        "category": "fruit",
        "quantity": D("13.000"),
        "revenue": D("25.00"),
    }

    result = sales_rollup_rebuild(now=rolled_at)

    assert (result.complete_through, RollupState.objects.get().complete_through) == (complete_through, complete_through)
    assert every_report(today=date(2026, 5, 10)) == from_lines


def test_the_rollup_holds_net_sales_per_day_location_and_article(history):
    s1, s2 = history

    sales_rollup_rebuild(now=datetime(2026, 6, 1, 8, tzinfo=UTC))

    assert sorted(
        (r.day, r.location.code, r.article.sku, r.quantity, r.revenue, r.lines)
        for r in SalesDay.objects.filter(day__gte=date(2026, 5, 5), day__lte=date(2026, 5, 5)).select_related(
            "location", "article"
        )
    ) == [
        (date(2026, 5, 5), "S1", "A", D("4.000"), D("8.00000"), 1),
        (date(2026, 5, 5), "S2", "A", D("-1.000"), D("-2.00000"), 1),
        (date(2026, 5, 5), "S2", "C", D("3.000"), D("4.50000"), 1),
    ]
    assert sorted(
        (r.day, r.location.code, r.receipts, r.quantity, r.revenue, r.lines)
        for r in ReceiptsDay.objects.select_related("location")
    ) == [
        (date(2026, 4, 25), "S1", 1, D("5.000"), D("10.00000"), 1),
        (date(2026, 5, 2), "S1", 1, D("15.000"), D("34.00000"), 2),
        (date(2026, 5, 5), "S1", 1, D("4.000"), D("8.00000"), 1),
        (date(2026, 5, 5), "S2", 1, D("2.000"), D("2.50000"), 2),
        (date(2026, 5, 11), "S1", 1, D("1.000"), D("2.00000"), 1),
    ]

    assert sorted(
        (r.month, r.location.code if r.location else "all", r.article.sku, r.quantity, r.revenue)
        for r in SalesMonth.objects.filter(month=date(2026, 5, 1)).select_related("location", "article")
    ) == [
        (date(2026, 5, 1), "S1", "A", D("15.000"), D("29.00000")),
        (date(2026, 5, 1), "S1", "B", D("5.000"), D("15.00000")),
        (date(2026, 5, 1), "S2", "A", D("-1.000"), D("-2.00000")),
        (date(2026, 5, 1), "S2", "C", D("3.000"), D("4.50000")),
        (date(2026, 5, 1), "all", "A", D("14.000"), D("27.00000")),
        (date(2026, 5, 1), "all", "B", D("5.000"), D("15.00000")),
        (date(2026, 5, 1), "all", "C", D("3.000"), D("4.50000")),
    ]


def test_whole_months_of_a_window_are_read_from_the_month_rows(history):
    """Apr 1 - May 31 is two whole months: a month row changed behind the
    report's back shows up (per location, and over all locations)."""
    sales_rollup_rebuild(now=datetime(2026, 6, 1, 8, tzinfo=UTC))
    article_c = q.Article.objects.get(sku="C")
    SalesMonth.objects.filter(month=date(2026, 5, 1), article=article_c).update(quantity=D("300"))
    wide = q.window_make(date_from=date(2026, 4, 1), date_to=date(2026, 5, 31))
    s2 = q.Location.objects.get(code="S2").pk

    assert [(r["sku"], r["quantity"]) for r in q.articles_ranked(window=wide, bottom=True, limit=2)] == [
        ("D", D("0.000")),
        ("B", D("5.000")),
    ]
    assert q.sales_by_category(window=wide)[1] == {"category": "veg", "quantity": D("300.000"), "revenue": D("4.50")}
    assert [
        (r["sku"], r["quantity"])
        for r in q.articles_ranked(
            window=q.window_make(date_from=date(2026, 4, 1), date_to=date(2026, 5, 31), location_id=s2)
        )
    ] == [("C", D("300.000")), ("A", D("-1.000"))]


def test_past_days_come_from_the_rollup_and_later_days_from_the_lines(history):
    """A rollup row changed behind the report's back shows up in the report
    (so past days really are read from the rollup); days after the rollup's
    last complete day still come from the lines."""
    sales_rollup_rebuild(now=datetime(2026, 5, 5, 8, tzinfo=UTC))  # complete through May 4
    ReceiptsDay.objects.filter(day=date(2026, 5, 2)).update(revenue=D("1000"))
    w = q.window_make(date_from=WINDOW[0], date_to=WINDOW[1])

    assert [(r["period"], r["location"], r["revenue"]) for r in q.sales_by_period(window=w)] == [
        (date(2026, 5, 2), "S1", D("1000.00")),
        (date(2026, 5, 5), "S1", D("8.00")),
        (date(2026, 5, 5), "S2", D("2.50")),
    ]


def test_a_late_receipt_shows_after_the_next_incremental_run_which_rerolls_only_its_day(history):
    s1, _ = history
    sales_rollup_rebuild()
    w = q.window_make(date_from=WINDOW[0], date_to=WINDOW[1])
    register = CashRegister.objects.get(code="R1")
    # A register syncs a receipt of May 2 days late.
    sell(register=register, at=datetime(2026, 5, 2, 18, tzinfo=UTC), items=[("B", "2", "3.00")])

    before = q.articles_ranked(window=w)
    result = sales_rollup_refresh()
    after = q.articles_ranked(window=w)

    # Until the run, the rolled-up May 2 does not have it (the documented staleness).
    assert [(r["sku"], r["quantity"]) for r in before] == [
        ("A", D("13.000")),
        ("B", D("5.000")),
        ("C", D("3.000")),
    ]
    assert (result.days, result.rebuilt) == (1, False)
    assert [(r["sku"], r["quantity"], r["revenue"]) for r in after] == [
        ("A", D("13.000"), D("25.00")),
        ("B", D("7.000"), D("21.00")),
        ("C", D("3.000"), D("4.50")),
    ]
    assert ReceiptsDay.objects.get(day=date(2026, 5, 2)).receipts == 2


def test_rolling_again_changes_nothing(history):
    sales_rollup_rebuild()
    rows = sorted(SalesDay.objects.values_list("day", "location_id", "article_id", "quantity", "revenue", "lines"))
    days = sorted(ReceiptsDay.objects.values_list("day", "location_id", "receipts", "quantity", "revenue", "lines"))

    sales_rollup_rebuild(chunk_days=1)
    Receipt.objects.update(recorded_at=timezone.now())  # every day touched
    again = sales_rollup_refresh()

    assert again.days == 4  # Apr 25, May 2, May 5, May 11 (one range each)
    assert (
        sorted(SalesDay.objects.values_list("day", "location_id", "article_id", "quantity", "revenue", "lines")) == rows
    )
    assert (
        sorted(ReceiptsDay.objects.values_list("day", "location_id", "receipts", "quantity", "revenue", "lines"))
        == days
    )


def test_the_first_incremental_run_builds_the_whole_rollup(history):
    result = sales_rollup_refresh(now=datetime(2026, 6, 1, 8, tzinfo=UTC))

    assert (result.rebuilt, result.days, result.complete_through) == (True, 38, date(2026, 5, 31))
    assert (SalesDay.objects.count(), SalesMonth.objects.count()) == (7, 9)


def test_the_rollup_job_is_scheduled_every_few_minutes_and_records_its_run(history, settings):
    settings.POSINV_REPORTS_ROLLUP_MINUTES = 5
    now = timezone.now()
    assert [d.key for d in backoffice_due(now=now)] == ["reports-rollup"]

    offered = scheduler_tick(now=now)  # in-process jobs: runs it here

    assert "reports-rollup" in offered
    run = JobRun.objects.get(name=ROLLUP_JOB)
    assert (run.status, run.counts["rebuilt"]) == (JobRun.Status.SUCCEEDED, True)
    assert RollupState.objects.get().complete_through == timezone.localdate(now) - timedelta(days=1)
    later = now + timedelta(minutes=4)
    assert dues_now(backoffice_due(now=later), now=later) == []
    later = now + timedelta(minutes=6)
    assert [d.key for d in dues_now(backoffice_due(now=later), now=later)] == ["reports-rollup"]
    assert reports_rollup_job()["rebuilt"] is False


def test_the_rollup_is_not_scheduled_when_turned_off_or_on_a_register_node(history, settings):
    settings.POSINV_REPORTS_ROLLUP_MINUTES = 0
    assert list(backoffice_due(now=timezone.now())) == []
    settings.POSINV_REPORTS_ROLLUP_MINUTES = 5
    settings.POSINV_NODE = "register"
    assert list(backoffice_due(now=timezone.now())) == []


def test_the_rebuild_command_shows_progress(history, capsys):
    call_command("reports_rollup", "--rebuild", "--chunk-days", "30")

    out = capsys.readouterr().out
    days = (timezone.localdate() - date(2026, 4, 25)).days + 1
    assert f"[{'#' * 30}] {days}/{days} days" in out
    assert f"{days} days rebuilt; complete through {timezone.localdate() - timedelta(days=1)}" in out
    assert (SalesDay.objects.count(), SalesMonth.objects.count()) == (7, 9)


def test_the_command_refuses_a_bad_chunk_size_and_rolls_nothing(history):
    with pytest.raises(CommandError, match="chunk_days: must be at least 1"):
        call_command("reports_rollup", "--rebuild", "--chunk-days", "0")
    assert (SalesDay.objects.count(), ReceiptsDay.objects.count(), RollupState.objects.count()) == (0, 0, 0)


def test_the_report_page_says_where_its_days_come_from_and_the_state_is_listed(history, client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser(username="boss", password="boss-pass"))
    url = "/admin/backoffice/report/sales/?date_from=2026-05-01&date_to=2026-05-10"
    before = client.get(url).content.decode()
    sales_rollup_rebuild(now=datetime(2026, 5, 5, 8, 30, tzinfo=UTC))

    after = client.get(url).content.decode()
    listed = client.get("/admin/backoffice/rollupstate/").content.decode()

    assert "Every day read live from the receipts (no rollup yet)." in before
    assert (
        "Days up to 2026-05-04 from the daily rollup (run 2026-05-05 08:30); later days, today included, "
        "read live from the receipts." in after
    )
    assert '<td class="field-complete_through nowrap">May 4, 2026</td>' in listed
    assert '<td class="field-days_rolled">17</td>' in listed  # Apr 25 (first receipt) - May 11 (last)


def test_a_late_receipt_in_an_earlier_month_carries_into_the_later_running_totals(history):
    sales_rollup_rebuild()
    register = CashRegister.objects.get(code="R1")
    sell(register=register, at=datetime(2026, 4, 28, 9, tzinfo=UTC), items=[("B", "4", "3.00")])

    sales_rollup_refresh()

    def running(month):
        return sorted(
            (r.location.code, r.article.sku, r.quantity)
            for r in SalesToMonth.objects.filter(month=month).select_related("location", "article")
        )

    assert running(date(2026, 4, 1)) == [("S1", "A", D("5.000")), ("S1", "B", D("4.000"))]
    assert running(date(2026, 5, 1)) == [
        ("S1", "A", D("20.000")),
        ("S1", "B", D("9.000")),
        ("S2", "A", D("-1.000")),
        ("S2", "C", D("3.000")),
    ]
    wide = q.window_make(date_from=date(2026, 5, 1), date_to=date(2026, 5, 31))
    assert [(r["sku"], r["location"], r["avg_daily_sales"]) for r in q.stock_cover(window=wide)] == [
        ("B", "S1", D("0.161")),  # May alone: the April receipt is in both running totals
        ("C", "S2", D("0.097")),
        ("A", "S1", D("0.484")),
    ]
