"""create_cabinet, import_trays and pull_cabinet, as a script would run them."""
from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from cabinets.models import Tray, WeighingCabinet
from posinv.models import ApiToken, JobRun, Location
from tests.factories import make_article, make_location
from tests.fakes.cabinet_vendor import FakeCabinetVendor

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_cabinet_prints_a_working_token_once_and_stores_only_its_hash():
    out, _ = run("create_cabinet", "CAB7", "--location", "CAB7-LOC", "--interval", "30")

    lines = out.splitlines()
    assert lines[0] == "cabinet CAB7 at location CAB7-LOC: pushes its readings, every 30 s"
    token = lines[1].removeprefix("device token: ")
    assert lines[2] == "(shown once; send it as 'Authorization: Token <token>')"
    assert Location.objects.get(code="CAB7-LOC").kind == "cabinet"
    stored = ApiToken.objects.get(kind="cabinet", subject="CAB7")
    assert token not in (stored.key_hash, stored.prefix) and stored.prefix == token[:8]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/v1/cabinets/CAB7/readings/", {"readings": []}, format="json").status_code == 200


def test_create_cabinet_refuses_a_taken_code_or_location_and_exits_non_zero():
    run("create_cabinet", "CAB7", "--location", "L7")
    make_location(code="L8")

    with pytest.raises(CommandError, match="code: cabinet CAB7 exists already"):
        run("create_cabinet", "CAB7", "--location", "L8")
    with pytest.raises(CommandError, match="location: location L7 belongs to cabinet CAB7"):
        run("create_cabinet", "CAB8", "--location", "L7")
    with pytest.raises(CommandError, match="code: 1-32 letters"):
        run("create_cabinet", "bad code!", "--location", "L9")
    assert list(WeighingCabinet.objects.values_list("code", flat=True)) == ["CAB7"]
    assert ApiToken.objects.filter(kind="cabinet").count() == 1


def write_csv(tmp_path, text: str):
    path = tmp_path / "trays.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_trays_creates_and_updates_trays_from_a_csv_file(tmp_path, cabinet):
    make_article(sku="SCR-1", unit_weight_g=Decimal("3.2"))
    make_article(sku="NUT-8", unit_weight_g=Decimal("5"))
    Tray.objects.create(cabinet=cabinet, tray_id="T-2", tare_g=Decimal("1"))
    path = write_csv(tmp_path, "tray_id,sku,tare_g,threshold,capacity\nT-1,SCR-1,412.5,40,200\nT-2,NUT-8,409,,\n")

    out, _ = run("import_trays", "CAB1", path)

    assert out == "cabinet CAB1: 1 trays created, 1 updated\n"
    assert list(Tray.objects.order_by("tray_id").values_list(
        "tray_id", "article__sku", "tare_g", "threshold", "capacity"
    )) == [
        ("T-1", "SCR-1", Decimal("412.5"), Decimal("40"), Decimal("200")),
        ("T-2", "NUT-8", Decimal("409"), None, None),
    ]


def test_import_trays_reports_every_bad_row_and_imports_nothing(tmp_path, cabinet):
    make_article(sku="SCR-1", unit_weight_g=Decimal("3.2"))
    make_article(sku="BOX", unit_weight_g=None)
    path = write_csv(
        tmp_path,
        "tray_id,sku,tare_g,threshold\n"
        "T-1,SCR-1,412.5,40\n"
        "T-2,NOPE,400,10\n"
        "T-3,SCR-1,-4,10\n"
        "T-1,SCR-1,400,x\n"
        ",BOX,400,\n",
    )
    err = StringIO()

    with pytest.raises(CommandError) as error:
        call_command("import_trays", "CAB1", path, stdout=StringIO(), stderr=err)

    assert str(error.value) == f"6 problem(s) in {path}; no tray was imported"
    assert err.getvalue().splitlines() == [
        "row 2 (line 3): sku: unknown article 'NOPE'",
        "row 3 (line 4): tare_g: -4 must be zero or more",
        "row 4 (line 5): tray_id: T-1 is also on row 1",
        "row 4 (line 5): threshold: 'x' is not a number",
        "row 5 (line 6): tray_id: required",
        "row 5 (line 6): sku: article BOX has no unit weight; weights cannot count it",
    ]
    assert Tray.objects.count() == 0


def test_import_trays_refuses_a_file_without_the_columns(tmp_path, cabinet):
    path = write_csv(tmp_path, "tray,article\nT-1,SCR-1\n")

    with pytest.raises(CommandError, match="missing column\\(s\\) tray_id, sku, tare_g, threshold"):
        run("import_trays", "CAB1", path)


def test_import_trays_into_an_unknown_cabinet_or_missing_file_fails(tmp_path, cabinet):
    with pytest.raises(CommandError, match="no cabinet NOPE"):
        run("import_trays", "NOPE", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="cannot read .*x.csv: No such file or directory"):
        run("import_trays", "CAB1", str(tmp_path / "x.csv"))


def test_pull_cabinet_pulls_now_and_shows_progress(cabinet, tray, screw):
    with FakeCabinetVendor(api_key="k", page_max=2) as vendor:
        WeighingCabinet.objects.filter(pk=cabinet.pk).update(pull_url=vendor.url("SN"), pull_api_key="k")
        for minute, grams in enumerate(["200", "200", "150"]):
            vendor.add("SN", tray_id="T-1", weight_g=grams, read_at=f"2026-05-03T08:0{minute}:00Z")

        out, _ = run("pull_cabinet", "CAB1")

    assert out.splitlines() == [
        "CAB1: page 1, 2 readings",
        "CAB1: page 2, 3 readings",
        "CAB1: 3 readings in 2 page(s): 2 posted, 1 unchanged, 0 held, 0 duplicate, 0 rejected",
    ]
    assert JobRun.objects.get(name="cabinet_pull").status == "succeeded"


def test_pull_cabinet_exits_non_zero_with_the_vendor_error(cabinet, tray):
    with FakeCabinetVendor(api_key="k") as vendor:
        WeighingCabinet.objects.filter(pk=cabinet.pk).update(pull_url=vendor.url("SN"), pull_api_key="wrong")
        vendor.add("SN", tray_id="T-1", weight_g="200", read_at="2026-05-03T08:00:00Z")
        err = StringIO()

        with pytest.raises(CommandError, match="pull failed for CAB1"):
            call_command("pull_cabinet", "CAB1", stdout=StringIO(), stderr=err)

    assert err.getvalue() == "CAB1: pull failed: the vendor refused the API key (401)\n"
    assert JobRun.objects.get(name="cabinet_pull").status == "failed"


def test_pull_cabinet_refuses_unknown_codes_and_push_only_cabinets(cabinet):
    with pytest.raises(CommandError, match="no cabinet NOPE"):
        run("pull_cabinet", "NOPE")
    with pytest.raises(CommandError, match="pull failed for CAB1"):
        run("pull_cabinet", "CAB1")


def test_prune_readings_deletes_old_readings_but_keeps_those_behind_shrink_alerts(cabinet, tray):
    from datetime import timedelta

    from django.utils import timezone

    from cabinets.models import ShrinkAlert, WeightReading
    from cabinets.services.readings import ReadingIn, readings_apply

    old = timezone.now() - timedelta(days=100)
    readings_apply(cabinet=cabinet, via="push", readings=[
        ReadingIn(tray_id="T-1", weight_g=Decimal("300"), read_at=old),
        ReadingIn(tray_id="T-1", weight_g=Decimal("200"), read_at=old + timedelta(minutes=10)),  # shrink
        ReadingIn(tray_id="T-1", weight_g=Decimal("200"), read_at=timezone.now() - timedelta(days=1)),
    ])
    assert ShrinkAlert.objects.count() == 1

    out, _ = run("prune_readings", "--days", "90")

    assert out.splitlines()[0] == "1 readings deleted ..."
    assert out.splitlines()[-1].startswith("1 readings read before ")
    assert sorted(WeightReading.objects.values_list("weight_g", flat=True)) == [Decimal("200"), Decimal("200")]
    assert ShrinkAlert.objects.count() == 1
    with pytest.raises(CommandError, match="--days must be at least 1"):
        run("prune_readings", "--days", "0")
