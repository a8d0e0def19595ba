"""Operations in a real headless browser (Debian's chromium via Playwright):
log in, import an article file through the admin, configure a register and
issue its token, push sales through the API, watch the sync-health
dashboard turn from amber to green (and red on a failed entry), retry the
failed entry, and run "Synchronize" on a pull register whose node is a
real process. Screenshots of each step go to test-artifacts/."""
from __future__ import annotations

import re
from contextlib import ExitStack

import pytest
import requests

from pos.models import CashRegister, SyncEntry
from posinv.models import StockLevel
from tests.factories import make_location
from tests.pos.factories import receipt_entries
from tests.support.processes import database_url, free_port, process_env, started_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTICLES_1 = "sku,name,unit,unit_weight_g,category,active,barcodes\nA-1,Apple,pcs,,fruit,1,\nB-2,Bread,pcs,,bakery,1,\n"
ARTICLES_2 = "sku,name,unit,unit_weight_g,category,active,barcodes\nC-3,Cheese,pcs,,dairy,1,\n"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "op@example.com", "operator-pass-1")


def log_in(page, base: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#ops-banner")


def import_articles(page, base: str, tmp_path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    page.goto(f"{base}/admin/posinv/article/import/")
    page.set_input_files("input[name=import_file]", str(path))
    page.select_option("select[name=format]", label="csv")
    page.click("input[type=submit]")
    page.click("input[type=submit][value='Confirm import']")
    return page.inner_text("ul.messagelist")


def add_register(page, base: str, code: str, *, sync_type: str = "push", node_url: str = "") -> None:
    page.goto(f"{base}/admin/pos/cashregister/add/")
    page.click(".field-location .select2-selection")
    page.fill(".select2-search__field", "S1")
    page.click(".select2-results__option >> text=S1")
    page.fill("#id_code", code)
    page.fill("#id_name", f"Till {code}")
    page.select_option("#id_sync_type", sync_type)
    for box in page.query_selector_all("input[name=tables]"):
        box.check()
    if node_url:
        page.fill("#id_node_url", node_url)
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")


def issue_token(page, base: str, code: str) -> str:
    page.goto(f"{base}/admin/posinv/apitoken/add/")
    page.select_option("#id_kind", "register")
    page.fill("#id_subject", code)
    page.click("input[name=_save]")
    return page.inner_text("ul.messagelist code")


def register_status(page, code: str) -> tuple[str, str]:
    row = page.locator(f"tr[data-register='{code}']")
    return row.get_attribute("data-status"), row.locator("td").last.inner_text().strip()


def test_operator_imports_configures_pushes_and_sees_amber_green_red_green(page, live_server, operator, artifacts,
                                                                          tmp_path, settings):
    settings.POSINV_DASHBOARD_REFRESH_SECONDS = 1
    base = live_server.url
    make_location(code="S1", name="Store 1")
    log_in(page, base)

    imported = import_articles(page, base, tmp_path, "articles.csv", ARTICLES_1)
    assert "Import finished: 2 new" in imported
    page.screenshot(path=str(artifacts / "ops-01-articles-imported.png"), full_page=True)

    add_register(page, base, "R1")
    assert CashRegister.objects.get(code="R1").location.code == "S1"
    token = issue_token(page, base, "R1")
    assert len(token) >= 20

    page.goto(f"{base}/ops/health/")
    assert register_status(page, "R1") == ("amber", "no transfer yet")
    page.screenshot(path=str(artifacts / "ops-02-dashboard-amber.png"), full_page=True)

    pushed = requests.post(f"{base}/api/v1/registers/R1/entries/", headers={"Authorization": f"Token {token}"},
                           json={"entries": receipt_entries(1, "R1-000001", [("A-1", "2", "1.20"),
                                                                              ("B-2", "1", "2.50")])}, timeout=30)
    assert pushed.status_code == 200 and pushed.json()["applied"] == 4
    # No click: the page reloads itself (every second here) and turns green.
    page.wait_for_selector("tr[data-register='R1'][data-status='green']", timeout=15_000)
    assert register_status(page, "R1") == ("green", "in sync")
    settings.POSINV_DASHBOARD_REFRESH_SECONDS = 600  # the next steps click; no reload under their feet
    page.reload()
    page.screenshot(path=str(artifacts / "ops-03-dashboard-green.png"), full_page=True)

    # A sale of an article the back office does not know yet fails and turns the register red.
    failing = requests.post(f"{base}/api/v1/registers/R1/entries/", headers={"Authorization": f"Token {token}"},
                            json={"entries": receipt_entries(5, "R1-000002", [("C-3", "1", "4.00")])}, timeout=30)
    assert failing.status_code == 200 and failing.json()["failed"] >= 1
    failed = SyncEntry.objects.filter(register__code="R1", state="failed").count()
    page.reload()
    status, reason = register_status(page, "R1")
    assert failed == 1 and status == "red"
    assert reason.startswith("1 failed entry: entry 6 (receipt_line:R1-000002:1) could not be applied: sku: "
                             "unknown sku 'C-3'. Fix the cause and Retry, or Skip them")
    assert page.get_attribute("#ops-overall", "class") == "ops-overall ops-red"
    page.screenshot(path=str(artifacts / "ops-04-dashboard-red.png"), full_page=True)

    # The figure links to exactly the failed entries; the cause is fixed, then they are retried.
    page.click("tr[data-register='R1'] a.ops-failed")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == failed
    failed_list = page.url
    assert "C-3" not in imported
    assert "Import finished: 1 new" in import_articles(page, base, tmp_path, "more.csv", ARTICLES_2)
    page.goto(failed_list)
    page.check("#action-toggle")
    page.select_option("select[name=action]", "retry_action")
    page.click("button[name=index]")
    message = page.inner_text("ul.messagelist")
    assert re.search(r"\d+ applied, 0 still failed", message), message
    page.screenshot(path=str(artifacts / "ops-05-entry-retried.png"), full_page=True)

    page.goto(f"{base}/ops/health/")
    assert register_status(page, "R1") == ("green", "in sync")
    assert StockLevel.objects.get(article__sku="C-3", location__code="S1").on_hand == -1
    # The ledger was never verified (amber overall): verify it from the dashboard, and all is green.
    assert page.get_attribute("#ops-ledger", "class") == "ops-section ops-amber"
    page.click("input[value='Verify the ledger now']")
    assert "Ledger verification started" in page.inner_text("ul.messagelist")
    assert page.get_attribute("#ops-ledger", "class") == "ops-section ops-green"
    assert page.get_attribute("#ops-overall", "class") == "ops-overall ops-green"
    page.screenshot(path=str(artifacts / "ops-06-dashboard-green-again.png"), full_page=True)
    page.goto(f"{base}/admin/")
    assert "Sync health: green" in page.inner_text("#ops-banner")


def test_synchronize_pulls_from_a_real_register_node_and_the_dashboard_follows(page, live_server, operator,
                                                                              artifacts, tmp_path):
    base = live_server.url
    make_location(code="S1", name="Store 1")
    log_in(page, base)
    import_articles(page, base, tmp_path, "articles.csv", ARTICLES_1)
    node_port = free_port()
    add_register(page, base, "R2", sync_type="pull", node_url=f"http://127.0.0.1:{node_port}")
    token = issue_token(page, base, "R2")
    node = process_env(database=database_url("opsnode"), redis=False, POSINV_NODE="register", MAIN_URL=base,
                       POSINV_REGISTER_CODE="R2", POSINV_REGISTER_TOKEN=token)

    with ExitStack() as stack:
        node_url = stack.enter_context(started_server(env=node, port=node_port, name="ops-node", workers=1))
        sale = {"receipt_no": "R2-000001", "created_at": "2026-03-02T09:00:00+00:00",
                "lines": [{"line_no": 1, "sku": "A-1", "quantity": "3", "unit_price": "1.20"}],
                "payments": [{"line_no": 1, "method": "cash", "amount": "3.60"}]}
        rung = requests.post(f"{node_url}/api/v1/till/receipts/", json=sale, timeout=30,
                             headers={"Authorization": f"Token {token}"})
        assert rung.status_code == 201, rung.text

        page.goto(f"{base}/ops/health/")
        assert register_status(page, "R2") == ("amber", "no transfer yet")

        page.goto(f"{base}/admin/pos/cashregister/")
        page.check("#result_list input[name=_selected_action]")
        page.select_option("select[name=action]", "synchronize_action")
        page.click("button[name=index]")
        message = page.inner_text("ul.messagelist")
        page.screenshot(path=str(artifacts / "ops-07-synchronized.png"), full_page=True)

    assert re.search(r"R2: pulled \d+ entries: \d+ applied, 0 duplicate, 0 failed, 0 waiting", message), message
    page.goto(f"{base}/ops/health/")
    assert register_status(page, "R2") == ("green", "in sync")
    assert StockLevel.objects.get(article__sku="A-1", location__code="S1").on_hand == -3
    page.screenshot(path=str(artifacts / "ops-08-dashboard-after-synchronize.png"), full_page=True)
