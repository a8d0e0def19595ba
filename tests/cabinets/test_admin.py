"""The cabinets admin: state at a glance, fixed query counts, the weight
chart, the silent-cabinet warning and the actions."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cabinets.models import ShrinkAlert, Tray, WeighingCabinet, WeightReading
from cabinets.services.provisioning import cabinet_create
from cabinets.services.readings import readings_apply
from posinv.models import ApiToken, JobRun
from posinv.services.tokens import token_find
from tests.cabinets.conftest import reading
from tests.factories import make_article
from tests.fakes.cabinet_vendor import FakeCabinetVendor

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def feed(cabinet, *readings):
    return readings_apply(cabinet=cabinet, readings=list(readings), via="push", now=timezone.now())


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def row_of(response, cabinet) -> str:
    return next(r for r in text(response).split("<tr") if f"/weighingcabinet/{cabinet.pk}/" in r)


def test_cabinet_list_shows_trays_filled_low_and_a_warning_for_a_silent_cabinet(admin_client, cabinet, tray):
    Tray.objects.create(cabinet=cabinet, tray_id="T-2", article=tray.article, threshold=Decimal("1"))
    feed(cabinet, reading(grams="130", minutes=0))  # T-1: 3 < threshold 5
    quiet, _ = cabinet_create(code="CAB-Q", location_code="Q-LOC", interval_seconds=60)
    WeighingCabinet.objects.filter(pk=quiet.pk).update(
        last_reading_at=timezone.now() - timedelta(seconds=121), created_at=timezone.now() - timedelta(days=1)
    )

    response = admin_client.get("/admin/cabinets/weighingcabinet/")

    assert response.status_code == 200
    cab1 = row_of(response, cabinet)
    assert re.findall(r'<td class="field-(tray_count|filled_count)">(\d+)</td>', cab1) == [
        ("tray_count", "2"), ("filled_count", "1")
    ]
    assert ">1</span>" in cab1.split('field-low_count">')[1].split("</td>")[0]
    assert ">ok</span>" in cab1
    assert "⚠ silent for over two intervals (120 s)" in row_of(response, quiet)
    assert "⚠" not in cab1


def test_cabinet_list_costs_the_same_queries_for_one_or_many_cabinets(admin_client, cabinet, tray):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/cabinets/weighingcabinet/").status_code == 200
        return len(captured)

    one = queries()
    for i in range(5):
        other, _ = cabinet_create(code=f"CAB-{i}", location_code=f"LOC-{i}")
        Tray.objects.create(cabinet=other, tray_id="T-1", article=tray.article)

    assert queries() == one


def test_cabinet_page_shows_trays_inline_and_warns_when_the_cabinet_is_silent(admin_client, cabinet, tray):
    feed(cabinet, reading(grams="222", minutes=0, position="A-03"))
    WeighingCabinet.objects.filter(pk=cabinet.pk).update(last_reading_at=timezone.now() - timedelta(hours=1))

    response = admin_client.get(f"/admin/cabinets/weighingcabinet/{cabinet.pk}/change/")

    page = text(response)
    assert response.status_code == 200
    assert "Cabinet CAB1 has sent nothing for more than two intervals (last reading: 1 h ago, interval 600 s)." in page
    assert 'value="T-1"' in page and 'value="A-03"' in page
    assert '<td class="field-quantity"> <p>12.000</p> </td>' in page
    assert f"{ApiToken.objects.get(subject='CAB1').prefix}… (issued " in page
    assert ">Filled</span>" in page


def test_an_active_cabinet_page_has_no_warning(admin_client, cabinet, tray):
    feed(cabinet, reading(grams="222", minutes=0))

    page = text(admin_client.get(f"/admin/cabinets/weighingcabinet/{cabinet.pk}/change/"))

    assert "has sent nothing" not in page


def test_tray_page_draws_the_weight_history_as_inline_svg(admin_client, cabinet, tray):
    feed(cabinet, reading(grams="300", minutes=0), reading(grams="250", minutes=10), reading(grams="206", minutes=20))

    page = text(admin_client.get(f"/admin/cabinets/tray/{tray.pk}/change/"))

    svg = page.split('<svg xmlns="http://www.w3.org/2000/svg" width="640"', 1)[1].split("</svg>", 1)[0]
    assert 'aria-label="weight history of 3 readings"' in svg
    assert len(re.findall(r"<circle ", svg)) == 3
    assert "2026-05-03 08:20:00: 206.000 g, Held: ambiguous" in svg
    assert "order threshold 150 g" in svg  # tare 100 + threshold 5 x 10 g
    assert "<script" not in svg


def test_readings_list_shows_each_outcome_with_a_fixed_number_of_queries(admin_client, cabinet, tray):
    feed(cabinet, reading(grams="222", minutes=0), reading(tray_id="NOPE", grams="1", minutes=0))

    with CaptureQueriesContext(connection) as few:
        page = text(admin_client.get("/admin/cabinets/weightreading/"))
    feed(cabinet, *[reading(grams=str(200 + 10 * i), minutes=i + 1, position="Z-9") for i in range(20)])
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get("/admin/cabinets/weightreading/").status_code == 200

    assert ">Count posted</span>" in page
    assert ">Rejected</span>" in page
    assert "unknown tray &#x27;NOPE&#x27; in cabinet CAB1" in page
    assert len(many) == len(few)


def test_the_ignored_position_is_shown_struck_through(admin_client, cabinet, tray):
    feed(cabinet, reading(grams="222", minutes=0, position="A-01"), reading(grams="212", minutes=5, position="B-02"))

    page = text(admin_client.get("/admin/cabinets/weightreading/?position_ignored__exact=1"))

    assert '<s title="ignored: the tray was filled">B-02</s> (ignored)' in page
    assert WeightReading.objects.filter(position_ignored=True).count() == 1


def test_pull_now_action_pulls_the_selected_cabinet(admin_client, cabinet, tray):
    with FakeCabinetVendor(api_key="k") as vendor:
        WeighingCabinet.objects.filter(pk=cabinet.pk).update(pull_url=vendor.url("SN"), pull_api_key="k")
        vendor.add("SN", tray_id="T-1", weight_g="222", read_at="2026-05-03T08:00:00Z")

        response = admin_client.post(
            "/admin/cabinets/weighingcabinet/", {"action": "pull_now", "_selected_action": [cabinet.pk]}, follow=True
        )

    assert "CAB1: pull requested" in text(response)
    assert JobRun.objects.get(name="cabinet_pull").status == "succeeded"
    assert WeightReading.objects.get().quantity == Decimal("12")


def test_pull_now_on_a_push_only_cabinet_reports_an_error(admin_client, cabinet):
    response = admin_client.post(
        "/admin/cabinets/weighingcabinet/", {"action": "pull_now", "_selected_action": [cabinet.pk]}, follow=True
    )

    assert "CAB1: cabinet CAB1 has no vendor endpoint (it pushes its readings)" in text(response)
    assert JobRun.objects.count() == 0


def test_rotate_token_shows_the_new_token_once_and_the_old_one_stops_working(
    admin_client, cabinet_and_token
):
    cabinet, old = cabinet_and_token

    response = admin_client.post(
        "/admin/cabinets/weighingcabinet/", {"action": "rotate_token", "_selected_action": [cabinet.pk]}, follow=True
    )

    new = re.search(r"the old one no longer works\): (\S+?)<", text(response)).group(1)
    assert token_find(old) is None
    assert token_find(new).subject == "CAB1"
    assert ApiToken.objects.filter(kind="cabinet", subject="CAB1").count() == 1


def test_shrink_alerts_are_listed_and_acknowledged(admin_client, cabinet, tray):
    feed(cabinet, reading(grams="300", minutes=0))
    feed(cabinet, reading(grams="200", minutes=10))
    alert = ShrinkAlert.objects.get()

    page = text(admin_client.get("/admin/cabinets/shrinkalert/"))
    response = admin_client.post(
        "/admin/cabinets/shrinkalert/", {"action": "acknowledge", "_selected_action": [alert.pk]}, follow=True
    )

    assert "CAB1/T-1" in page and '<td class="field-unexplained">10.000</td>' in page
    assert "1 alert(s) acknowledged" in text(response)
    alert.refresh_from_db()
    assert alert.acknowledged is True


def test_tray_search_finds_by_article_sku(admin_client, cabinet, tray):
    make_article(sku="OTHER", unit_weight_g=Decimal("1"))

    page = text(admin_client.get("/admin/cabinets/tray/?q=SCR-1"))

    assert re.search(r"1 (result|tray)", page), page[page.find("paginator"):][:200]
    assert f"/admin/cabinets/tray/{tray.pk}/change/" in page


def test_a_filled_tray_cannot_be_linked_to_another_article_in_the_admin(admin_client, cabinet, tray):
    feed(cabinet, reading(grams="222", minutes=0))
    other = make_article(sku="NUT-1", unit_weight_g=Decimal("5"))

    response = admin_client.post(f"/admin/cabinets/tray/{tray.pk}/change/", {
        "cabinet": cabinet.pk, "tray_id": "T-1", "article": other.pk, "position": "", "tare_g": "100",
        "threshold": "5", "capacity": "",
    })

    assert response.status_code == 200
    assert "This tray is filled; empty it before linking another article." in text(response)
    tray.refresh_from_db()
    assert tray.article_id != other.pk
