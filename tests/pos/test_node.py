"""The register node's side, in-process: the till API, the outbox with
gap-free entry nos., disabled tables, re-exports, and the pull API."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from pos.models import CashRegister, PosProcess, SyncEntry
from pos.services.entries import pos_process_export, receipt_export
from pos.services.node import MainUnreachable, node_register, nudge_credential, register_push
from posinv.models import Location, StockMove
from tests.pos.factories import make_register

pytestmark = pytest.mark.django_db
TOKEN = "node-token-for-tests"


@pytest.fixture
def node(settings):
    settings.POSINV_NODE = "register"
    settings.POSINV_REGISTER_CODE = "R1"
    settings.POSINV_REGISTER_TOKEN = TOKEN
    settings.MAIN_URL = "http://127.0.0.1:9"  # nothing listens there: the main system is down
    return settings


@pytest.fixture
def till(node):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TOKEN}")
    return client


def sale(receipt_no="R1-000001", **extra) -> dict:
    body = {
        "receipt_no": receipt_no,
        "created_at": "2026-03-02T09:00:00+01:00",
        "process_no": "P-1",
        "cashier": "Eve",
        "customer": {"customer_no": "C-1", "name": "Ada", "email": "ada@example.com"},
        "lines": [
            {"line_no": 1, "sku": "A-1", "quantity": "2", "unit_price": "1.20"},
            {"line_no": 2, "sku": "B-1", "quantity": "-1", "unit_price": "4.95", "discount": "0.50"},
        ],
        "payments": [{"line_no": 1, "method": "card", "amount": "-3.05"}],
    }
    body.update(extra)
    return body


def test_a_sale_on_the_till_writes_one_entry_per_row_even_while_main_is_down(till):
    response = till.post("/api/v1/till/receipts/", sale(), format="json")

    assert response.status_code == 201
    assert response.json() == {"receipt_no": "R1-000001", "duplicate": False, "entry_nos": [2, 3, 4, 5, 6]}
    register = CashRegister.objects.get(code="R1")
    assert register.location.code == "NODE-R1"  # main unreachable: local defaults until settings arrive
    rows = list(SyncEntry.objects.order_by("entry_no").values_list("entry_no", "table", "record_id", "state"))
    assert rows == [
        (1, "pos_process", "pos_process:P-1", "pending"),
        (2, "customer", "customer:C-1", "pending"),
        (3, "receipt", "receipt:R1-000001", "pending"),
        (4, "receipt_line", "receipt_line:R1-000001:1", "pending"),
        (5, "receipt_line", "receipt_line:R1-000001:2", "pending"),
        (6, "payment_line", "payment_line:R1-000001:1", "pending"),
    ]
    # The response reports the receipt's own entries; the process entry came first.
    assert SyncEntry.objects.get(entry_no=3).record == {
        "receipt_no": "R1-000001", "process_no": "P-1", "created_at": "2026-03-02T08:00:00+00:00",
        "customer_no": "C-1", "total": "-3.05", "currency": "EUR"}
    assert SyncEntry.objects.get(entry_no=5).record["discount"] == "0.50"
    assert StockMove.objects.count() == 0  # stock is kept on the main system


def test_the_same_sale_again_is_a_duplicate_and_writes_no_entries(till):
    till.post("/api/v1/till/receipts/", sale(), format="json")

    again = till.post("/api/v1/till/receipts/", sale(), format="json")
    changed = till.post("/api/v1/till/receipts/", sale(lines=[{"line_no": 1, "sku": "A-1", "quantity": "9",
                                                               "unit_price": "1.20"}]), format="json")

    assert (again.status_code, again.json()["duplicate"], again.json()["entry_nos"]) == (200, True, [])
    assert changed.status_code == 409
    assert changed.json()["errors"][0]["reason"] == "receipt R1-000001 was recorded before with different content"
    assert SyncEntry.objects.count() == 6


def test_bad_sale_is_400_naming_the_field_and_writes_nothing(till):
    body = sale(lines=[{"line_no": 1, "sku": "A-1", "quantity": "0", "unit_price": "1.20"}])

    response = till.post("/api/v1/till/receipts/", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "lines[0].quantity", "reason": "must not be zero",
                                          "code": "invalid"}]
    assert SyncEntry.objects.count() == 0


def test_till_needs_the_registers_token(node):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token wrong")

    assert client.post("/api/v1/till/receipts/", sale(), format="json").status_code == 401
    assert APIClient().post("/api/v1/till/receipts/", sale(), format="json").status_code == 401
    assert SyncEntry.objects.count() == 0


def test_a_disabled_table_produces_no_entries(till):
    register = node_register()
    register.tables = ["receipt", "receipt_line"]
    register.save()

    till.post("/api/v1/till/receipts/", sale(), format="json")

    assert list(SyncEntry.objects.order_by("entry_no").values_list("entry_no", "table")) == [
        (1, "receipt"), (2, "receipt_line"), (3, "receipt_line")]


def test_export_of_a_process_with_its_receipts_appends_the_same_records_again(till):
    till.post("/api/v1/till/receipts/", sale("R1-000001"), format="json")
    till.post("/api/v1/till/receipts/", sale("R1-000002", customer=None), format="json")
    process = PosProcess.objects.get(process_no="P-1")
    first_records = {e.record_id: e.record for e in SyncEntry.objects.all()}

    alone = pos_process_export(process_id=process.pk)
    with_receipts = pos_process_export(process_id=process.pk, include_receipts=True)
    one = receipt_export(receipt_id=process.receipts.get(receipt_no="R1-000002").pk)

    assert [e.entry_no for e in alone] == [11]
    assert [e.record_id for e in with_receipts] == [
        "pos_process:P-1", "customer:C-1", "receipt:R1-000001", "receipt_line:R1-000001:1",
        "receipt_line:R1-000001:2", "payment_line:R1-000001:1", "receipt:R1-000002", "receipt_line:R1-000002:1",
        "receipt_line:R1-000002:2", "payment_line:R1-000002:1"]
    assert [e.entry_no for e in with_receipts] == list(range(12, 22))
    assert [e.entry_no for e in one] == [22, 23, 24, 25]
    assert all(e.record == first_records[e.record_id] for e in with_receipts + one)
    assert list(SyncEntry.objects.values_list("entry_no", flat=True).order_by("entry_no")) == list(range(1, 26))


def test_push_while_main_is_down_backs_off_and_keeps_every_entry_pending(till):
    till.post("/api/v1/till/receipts/", sale(), format="json")

    with pytest.raises(MainUnreachable):
        register_push()

    register = CashRegister.objects.get(code="R1")
    assert register.failures_in_row == 1
    assert register.retry_after is not None and register.retry_after > register.created_at
    assert "GET settings" in register.last_error
    assert SyncEntry.objects.filter(state="pending").count() == 6


def test_outbox_is_read_after_an_entry_no_and_acknowledged_through_one(till, node):
    for number in range(1, 4):
        till.post("/api/v1/till/receipts/", sale(f"R1-00000{number}", customer=None), format="json")
    main = APIClient()
    main.credentials(HTTP_AUTHORIZATION=f"Token {TOKEN}")  # the main system decrypts its copy of the token

    page = main.get("/api/v1/sync/outbox/", {"after": 2, "limit": 3}).json()
    acked = main.post("/api/v1/sync/outbox/ack/", {"through": 5}, format="json")

    assert [e["entry_no"] for e in page["entries"]] == [3, 4, 5]
    assert (page["register"], page["last_entry_no"], page["more"]) == ("R1", 13, True)
    assert page["entries"][0] == {"entry_no": 3, "table": "receipt_line", "record_id": "receipt_line:R1-000001:1",
                                  "record": SyncEntry.objects.get(entry_no=3).record}
    assert acked.json() == {"through": 5, "marked": 5}
    assert list(SyncEntry.objects.filter(state="delivered").values_list("entry_no", flat=True).order_by(
        "entry_no")) == [1, 2, 3, 4, 5]


def test_the_node_refuses_the_token_hash_for_its_outbox_and_accepts_it_only_to_push_now(till, node):
    till.post("/api/v1/till/receipts/", sale(), format="json")
    holder_of_the_hash = APIClient()
    holder_of_the_hash.credentials(HTTP_AUTHORIZATION=f"Token {nudge_credential(TOKEN)}")

    page = holder_of_the_hash.get("/api/v1/sync/outbox/", {"after": 0, "limit": 10})
    ack = holder_of_the_hash.post("/api/v1/sync/outbox/ack/", {"through": 6}, format="json")
    sale_with_hash = holder_of_the_hash.post("/api/v1/till/receipts/", sale("R1-000002"), format="json")
    nudge = holder_of_the_hash.post("/api/v1/sync/push-now/")

    assert (page.status_code, ack.status_code, sale_with_hash.status_code) == (401, 401, 401)
    assert page.json() == {"errors": [{"code": "authentication_failed", "reason": "Invalid token."}]}
    assert SyncEntry.objects.filter(state="delivered").count() == 0  # the ack did nothing
    assert SyncEntry.objects.filter(record_id="receipt:R1-000002").count() == 0
    assert (nudge.status_code, nudge.json()) == (202, {"queued": True})


def test_outbox_refuses_other_credentials_and_is_absent_on_the_main_system(node, settings, store):
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token another-token")

    assert stranger.get("/api/v1/sync/outbox/").status_code == 401
    settings.POSINV_NODE = "main"
    make_register(code="R1", location=store)
    staff = APIClient()
    assert staff.get("/api/v1/sync/outbox/").status_code == 404


def test_node_register_is_created_once_with_a_placeholder_location(node):
    first = node_register()
    second = node_register()

    assert first.pk == second.pk
    assert Location.objects.filter(code="NODE-R1").count() == 1


def test_processes_and_stock_counts_from_the_till_write_their_entries(till):
    opened = till.post("/api/v1/till/processes/", {"process_no": "P-7", "opened_at": "2026-03-02T08:00:00Z",
                                                    "cashier": "Eve"}, format="json")
    closed = till.post("/api/v1/till/processes/P-7/close/", {"closed_at": "2026-03-02T18:00:00Z"}, format="json")
    unknown = till.post("/api/v1/till/processes/P-8/close/", {"closed_at": "2026-03-02T18:00:00Z"}, format="json")
    count = {"sku": "A-1", "counted_qty": "12.5", "counted_at": "2026-03-02T19:00:00Z"}
    counted = till.post("/api/v1/till/stock-counts/", count, format="json")
    again = till.post("/api/v1/till/stock-counts/", count, format="json")
    negative = till.post("/api/v1/till/stock-counts/", {**count, "counted_qty": "-1"}, format="json")

    assert (opened.status_code, closed.json(), counted.status_code, again.status_code) == (
        201, {"process_no": "P-7", "status": "closed"}, 201, 201)
    assert (unknown.status_code, unknown.json()["errors"][0]) == (
        400, {"code": "invalid", "reason": "unknown POS process 'P-8'", "field": "process_no"})
    assert (negative.status_code, negative.json()["errors"][0]["reason"]) == (
        400, "a counted quantity cannot be negative")
    entries = list(SyncEntry.objects.order_by("entry_no").values_list("table", "record"))
    assert [(table, record.get("status") or record.get("counted_qty")) for table, record in entries] == [
        ("pos_process", "open"), ("pos_process", "closed"), ("stock_count", "12.500")]
    assert entries[1][1]["closed_at"] == "2026-03-02T18:00:00+00:00"
