"""Every report page in a real headless browser: log in to a live server,
open the page, and require each chart to have drawn marks with a visible
size; a screenshot of each page goes to test-artifacts/."""

from __future__ import annotations

import pytest

from tests.backoffice.reportdata import report_data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUERY = "date_from=2026-05-01&date_to=2026-05-10"
PAGES = {
    "sales": ["by_period", "by_location"],
    "articles": ["top", "categories"],
    "sell-through": ["sell_through"],
    "margin": ["margin"],
    "stock-cover": ["cover"],
}

# For each chart box: how many marks it says it drew, and how many marks
# really have a visible area on the page.
CHART_STATE = """
() => Array.from(document.querySelectorAll('.bo-chart')).map(box => ({
  id: box.id,
  drawn: Number(box.getAttribute('data-drawn') || 0),
  error: box.getAttribute('data-error'),
  visible: Array.from(box.querySelectorAll('svg .bo-mark')).filter(m => {
    const r = m.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  }).length,
}))
"""


def charts_on(page) -> dict[str, dict]:
    return {state["id"]: state for state in page.evaluate(CHART_STATE)}


def log_in(page, base_url: str, django_user_model) -> None:
    django_user_model.objects.create_superuser(username="boss", password="boss-pass-1")
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "boss-pass-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


def test_every_report_page_draws_its_charts(live_server, page, artifacts, django_user_model):
    report_data()
    log_in(page, live_server.url, django_user_model)

    for slug, names in PAGES.items():
        response = page.goto(f"{live_server.url}/admin/backoffice/report/{slug}/?{QUERY}")
        assert response.status == 200, slug
        page.wait_for_selector(".bo-chart[data-drawn]", timeout=10_000)
        page.screenshot(path=str(artifacts / f"report-{slug}.png"), full_page=True)
        charts = charts_on(page)
        assert sorted(charts) == sorted(f"chart-{name}" for name in names), slug
        for chart_id, state in charts.items():
            assert state["error"] is None, (slug, chart_id, state)
            assert state["drawn"] > 0 and state["visible"] == state["drawn"], (slug, chart_id, state)


def test_the_check_fails_when_the_chart_script_does_not_run(live_server, page, artifacts, django_user_model):
    """The same check on a page whose chart script is broken finds no drawn
    chart: the test above would fail if charts stopped rendering."""
    report_data()
    log_in(page, live_server.url, django_user_model)
    page.route(
        "**/backoffice/charts.js",
        lambda route: route.fulfill(status=200, body="/* broken */", content_type="text/javascript"),
    )

    page.goto(f"{live_server.url}/admin/backoffice/report/margin/?{QUERY}")
    page.wait_for_load_state("load")
    page.screenshot(path=str(artifacts / "report-margin-broken.png"), full_page=True)

    assert charts_on(page) == {"chart-margin": {"id": "chart-margin", "drawn": 0, "error": None, "visible": 0}}


def test_the_csv_link_downloads_the_table(live_server, page, django_user_model):
    report_data()
    log_in(page, live_server.url, django_user_model)
    page.goto(f"{live_server.url}/admin/backoffice/report/margin/?{QUERY}")

    with page.expect_download() as download:
        page.click("a.bo-csv")

    assert download.value.suggested_filename == "margin-margin.csv"
    assert open(download.value.path()).read().splitlines()[1] == "A,Apple,13.000,25.00,15.60,9.40,37.6"
