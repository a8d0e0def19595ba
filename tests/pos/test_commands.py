"""Management commands: provisioning (token printed once), the jobs run by
hand, recording sales from a file and re-exports; bad input exits non-zero
with a message and changes nothing."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from pos.models import CashRegister, Receipt, SyncEntry
from pos.services.apply import entries_receive
from pos.services.transfer import register_token_rotate
from posinv.models import ApiToken
from tests.factories import make_article
from tests.pos.factories import make_register, receipt_entries

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_register_prints_its_token_once_and_the_token_works(store):
    out, err = run("create_register", "R7", "--location", "S1", "--type", "push", "--records-per-run", "250")

    token = out.strip()
    assert len(token) >= 40 and "\n" not in token
    assert "register R7 created at S1 (push, 250 records per run)" in err
    register = CashRegister.objects.get(code="R7")
    assert (register.sync_type, register.records_per_run, register.tables[0]) == ("push", 250, "pos_process")
    assert ApiToken.objects.get(subject="R7").key_hash != token  # stored hashed only
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/registers/R7/settings/").json()["records_per_run"] == 250


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["R1", "--location", "NOWHERE"], "location: unknown location 'NOWHERE'"),
        (["R1", "--location", "S1", "--records-per-run", "20000"], "records_per_run: must be between 1 and 10000"),
        (["R1", "--location", "S1", "--type", "pull"], "node_url: a pull register needs the node's base URL"),
        (["R1", "--location", "S1", "--tables", "receipt,till"], "--tables: unknown table(s) till"),
    ],
)
def test_create_register_refuses_bad_input_and_creates_nothing(store, args, message):
    with pytest.raises(CommandError) as caught:
        run("create_register", *args)

    assert message in str(caught.value)
    assert (CashRegister.objects.count(), ApiToken.objects.count()) == (0, 0)


def test_create_register_twice_is_refused(store):
    run("create_register", "R1", "--location", "S1")

    with pytest.raises(CommandError, match="code: register 'R1' exists already"):
        run("create_register", "R1", "--location", "S1")
    assert ApiToken.objects.count() == 1


def test_rotate_register_token_retires_the_old_one(store):
    old, _ = run("create_register", "R1", "--location", "S1")
    new, _ = run("rotate_register_token", "R1")
    client = APIClient()

    client.credentials(HTTP_AUTHORIZATION=f"Token {old.strip()}")
    assert client.get("/api/v1/registers/R1/settings/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {new.strip()}")
    assert client.get("/api/v1/registers/R1/settings/").status_code == 200


def test_entries_retry_exits_non_zero_while_entries_still_fail(store, article):
    register = make_register(location=store)
    entries_receive(register_id=register.pk, entries=receipt_entries(1, "R1-1", [("NEW-1", "1", "1.00")]))

    with pytest.raises(CommandError, match="1 entries still fail"):
        run("entries_retry", "R1")
    make_article(sku="NEW-1")
    out, _ = run("entries_retry", "R1")

    assert out.strip() == "R1: 1 applied, 0 still failed"
    assert SyncEntry.objects.filter(state="failed").count() == 0


def test_job_commands_name_what_is_wrong(store):
    make_register(location=store, sync_type="pull")

    with pytest.raises(CommandError, match="no register\\(s\\) R9"):
        run("register_pull", "R9")
    with pytest.raises(CommandError, match="pull failed for R1"):
        run("register_pull", "R1")  # no node URL
    with pytest.raises(CommandError, match="runs on a register node"):
        run("register_push")
    with pytest.raises(CommandError, match="no register 'R9'"):
        run("entries_retry", "R9")


def test_record_sales_on_a_node_records_the_good_and_reports_every_refused(settings, tmp_path):
    settings.POSINV_NODE = "register"
    settings.POSINV_REGISTER_CODE = "R1"
    settings.POSINV_REGISTER_TOKEN = "t"
    settings.MAIN_URL = "http://127.0.0.1:9"
    good = {"receipt_no": "R1-1", "created_at": "2026-03-02T09:00:00Z",
            "lines": [{"line_no": 1, "sku": "A-1", "quantity": "1", "unit_price": "2.00"}]}
    bad = {"receipt_no": "R1-2", "created_at": "yesterday",
           "lines": [{"line_no": 1, "sku": "A-1", "quantity": "1", "unit_price": "2.00"}]}
    path = tmp_path / "sales.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in (good, bad, good)))
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 receipts refused"):
        call_command("record_sales", str(path), "--no-progress", stdout=out, stderr=err)

    assert out.getvalue().strip() == "1 receipts recorded, 1 already recorded, 1 refused"
    assert "receipt 1: " in err.getvalue() and "created_at" in err.getvalue()
    assert list(Receipt.objects.values_list("receipt_no", flat=True)) == ["R1-1"]
    assert SyncEntry.objects.count() == 2


def test_record_sales_refuses_to_run_on_the_main_system(tmp_path):
    path = tmp_path / "sales.json"
    path.write_text("[]")

    with pytest.raises(CommandError, match="runs on a register node"):
        run("record_sales", str(path))


def test_pos_export_of_a_receipt_on_the_main_system(store, article):
    register = make_register(location=store)
    entries_receive(register_id=register.pk, entries=receipt_entries(1, "R1-1", [("A-1", "1", "1.00")]))

    out, _ = run("pos_export", "--register", "R1", "--receipt", "R1-1")

    assert out.strip() == "3 entries written (entry no. 1–3)"
    with pytest.raises(CommandError, match="no receipt 'R1-9' on register 'R1'"):
        run("pos_export", "--register", "R1", "--receipt", "R1-9")


def test_synchronize_names_unknown_registers_and_reports_an_unreachable_node(store):
    pull = make_register(location=store, sync_type="pull", node_url="http://127.0.0.1:9")
    register_token_rotate(register_id=pull.pk)
    err = StringIO()

    with pytest.raises(CommandError, match="no register\\(s\\) R9"):
        run("synchronize", "R1", "R9")
    with pytest.raises(CommandError, match="synchronize failed for R1"):
        call_command("synchronize", "R1", stdout=StringIO(), stderr=err)

    assert err.getvalue().startswith("R1: ")
    assert CashRegister.objects.get(code="R1").last_error.startswith("GET outbox: ")


def test_demo_loader_gives_registers_and_synchronized_sales_with_one_failed_entry(store, article):
    from pos.demo import pos_demo_load
    from posinv.models import Location

    Location.objects.create(code="S2", name="Kiosk")
    make_article(sku="B-1")

    pos_demo_load()
    pos_demo_load()  # idempotent

    r1 = CashRegister.objects.get(code="R1")
    assert (r1.last_applied_entry_no, Receipt.objects.filter(register=r1).count()) == (48, 12)
    assert list(SyncEntry.objects.filter(state="failed").values_list("record__sku", flat=True)) == ["NEW-ARTICLE-1"]
    assert CashRegister.objects.get(code="R2").active is False
