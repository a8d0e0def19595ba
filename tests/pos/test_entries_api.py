"""The push endpoint of the register contract on the main system:
POST /api/v1/registers/{code}/entries/ — apply in order, idempotently,
with gaps, conflicts, failures and every refusal answered precisely."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from pos.models import Receipt, ReceiptLine, SyncConflict, SyncEntry
from pos.services.apply import entries_retry, entries_skip
from posinv.exceptions import InvalidInput
from posinv.models import ApiToken, StockLevel, StockMove
from posinv.services.tokens import token_issue
from tests.factories import make_article
from tests.pos.factories import make_register, receipt_entries

pytestmark = pytest.mark.django_db
URL = "/api/v1/registers/{}/entries/"


@pytest.fixture
def register(store, article):
    return make_register(code="R1", location=store)


@pytest.fixture
def client(register):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind=ApiToken.Kind.REGISTER, subject='R1')}")
    return client


def push(client, entries, code="R1"):
    return client.post(URL.format(code), {"entries": entries}, format="json")


def on_hand(sku="A-1", location="S1") -> Decimal:
    return StockLevel.objects.get(article__sku=sku, location__code=location).on_hand


def test_a_pushed_receipt_creates_receipt_lines_payments_and_sale_moves(client, register):
    make_article(sku="B-1")
    entries = receipt_entries(1, "R1-000001", [("A-1", "2", "1.20"), ("B-1", "-1", "4.95")])

    response = push(client, entries)

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("applied", "duplicate", "failed", "waiting", "conflict", "last_applied_entry_no")} \
        == {"applied": 4, "duplicate": 0, "failed": 0, "waiting": 0, "conflict": 0, "last_applied_entry_no": 4}
    receipt = Receipt.objects.get(receipt_no="R1-000001")
    assert (receipt.total, receipt.source, receipt.register.code) == (Decimal("-2.55"), "sync", "R1")
    assert list(receipt.lines.values_list("line_no", "sku", "quantity")) == [
        (1, "A-1", Decimal("2.000")), (2, "B-1", Decimal("-1.000"))]
    assert list(receipt.payments.values_list("method", "amount")) == [("cash", Decimal("-2.55"))]
    assert on_hand("A-1") == Decimal("-2")
    assert on_hand("B-1") == Decimal("1")  # a negative line is a return
    assert StockMove.objects.get(idempotency_key="pos:R1:R1-000001:1").kind == "sale"
    assert StockMove.objects.get(idempotency_key="pos:R1:R1-000001:2").kind == "return"
    register.refresh_from_db()
    assert register.last_applied_entry_no == 4


def test_the_same_batch_again_is_all_duplicates_with_the_first_results(client):
    entries = receipt_entries(1, "R1-000001", [("A-1", "2", "1.20")])
    first = push(client, entries).json()

    again = push(client, entries)

    body = again.json()
    assert again.status_code == 200
    assert (body["applied"], body["duplicate"], body["last_applied_entry_no"]) == (0, 3, 3)
    move_id = StockMove.objects.get().pk
    assert body["duplicates"][1] == {"entry_no": 2, "state": "applied", "result": {"status": "applied",
                                                                                  "move_id": move_id}}
    assert first["applied"] == 3
    assert StockMove.objects.count() == 1
    assert on_hand() == Decimal("-2")


def test_same_entry_no_with_other_content_is_409_and_kept_for_a_person(client):
    push(client, receipt_entries(1, "R1-000001", [("A-1", "2", "1.20")]))
    changed = receipt_entries(1, "R1-000001", [("A-1", "5", "1.20")])

    response = push(client, changed[1:2])

    assert response.status_code == 409
    body = response.json()
    assert body["conflict"] == 1
    assert body["conflicts"][0]["entry_no"] == 2
    assert "received before with different content" in body["conflicts"][0]["reason"]
    conflict = SyncConflict.objects.get()
    assert (conflict.entry_no, conflict.record["quantity"]) == (2, "5.000")
    assert SyncEntry.objects.get(direction="in", entry_no=2).record["quantity"] == "2.000"
    assert on_hand() == Decimal("-2")


def test_a_gap_holds_later_entries_until_it_is_filled_then_they_apply_in_order(client, register):
    # Entry 3 counts 10 pieces, entry 4 sells 2 after the count: in order the
    # result is 8; applied out of order it would be 10.
    later = [
        {"entry_no": 3, "table": "stock_count", "record_id": "stock_count:A-1:x",
         "record": {"sku": "A-1", "counted_qty": "10.000", "counted_at": "2026-03-02T10:00:00+00:00"}},
        *receipt_entries(3, "R1-000002", [("A-1", "2", "1.00")])[1:2],
    ]
    held = push(client, later)

    assert held.status_code == 200
    assert (held.json()["waiting"], held.json()["last_applied_entry_no"]) == (2, 0)
    assert held.json()["missing"] == {"from": 1, "through": 2}
    assert StockMove.objects.count() == 0
    assert Receipt.objects.count() == 0

    filled = push(client, receipt_entries(1, "R1-000001", [("A-1", "5", "1.00")])[:2])

    body = filled.json()
    assert (body["applied"], body["released"], body["last_applied_entry_no"], body["missing"]) == (2, 2, 4, None)
    assert on_hand() == Decimal("8")
    assert list(StockMove.objects.order_by("pk").values_list("kind", "quantity")) == [
        ("sale", Decimal("-5")), ("count", Decimal("15")), ("sale", Decimal("-2"))]
    assert set(SyncEntry.objects.values_list("state", flat=True)) == {"applied"}


def test_a_malformed_envelope_is_400_naming_entry_and_field_and_nothing_is_applied(client, register):
    entries = receipt_entries(1, "R1-000001", [("A-1", "2", "1.20"), ("A-1", "1", "1.20")])
    entries[2]["record"] = "quantity=2"
    entries[1]["record_id"] = ""

    response = push(client, entries)

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": "invalid", "field": "entries[1].record_id", "index": 1, "reason": "required, at most 200 characters"},
        {"code": "invalid", "reason": "must be an object", "field": "entries[2].record", "index": 2},
    ]
    assert (SyncEntry.objects.count(), Receipt.objects.count(), StockMove.objects.count()) == (0, 0, 0)
    register.refresh_from_db()
    assert register.last_applied_entry_no == 0
    # The main system says why this register's sales do not arrive.
    assert register.last_error == (
        "a batch was refused whole (HTTP 400): entries[1].record_id: required, at most 200 characters")


def test_a_record_the_main_refuses_is_a_failed_entry_and_the_register_s_other_entries_go_on(client, register):
    # A sale the node accepted but the main system refuses (a total it calls
    # too large, a price with three decimals) fails alone: the receipt's
    # lines still move stock, later receipts are applied, and the register
    # shows the failure instead of "in sync".
    entries = receipt_entries(1, "R1-000001", [("A-1", "2", "1.20"), ("A-1", "1", "1.20")])
    entries[0]["record"]["total"] = "100000000000.00"
    entries[2]["record"]["unit_price"] = "1.234"
    entries += receipt_entries(5, "R1-000002", [("A-1", "4", "1.00")])

    response = push(client, entries)

    body = response.json()
    assert response.status_code == 200
    assert (body["applied"], body["failed"], body["waiting"], body["last_applied_entry_no"], body["missing"]) \
        == (5, 2, 0, 7, None)
    assert body["failures"] == [
        {"entry_no": 1, "record_id": "receipt:R1-000001", "field": "record.total", "code": "invalid",
         "reason": "must be between -999,999,999.99 and 999,999,999.99 (the system's amount bound)"},
        {"entry_no": 3, "record_id": "receipt_line:R1-000001:2", "field": "record.unit_price", "code": "invalid",
         "reason": "at most 2 decimal places"},
    ]
    assert sorted(Receipt.objects.values_list("receipt_no", flat=True)) == ["R1-000001", "R1-000002"]
    assert on_hand() == Decimal("-6")  # line 1 of the first receipt and the second receipt
    register.refresh_from_db()
    assert register.last_applied_entry_no == 7
    assert register.last_error.startswith(
        "2 failed entries: entry 1 (receipt:R1-000001) could not be applied: record.total: must be between "
        "-999,999,999.99 and 999,999,999.99 (the system's amount bound) and 1 more.")

    # The same batch again (the node did not get the answer) changes nothing.
    again = push(client, entries).json()
    assert (again["applied"], again["duplicate"], again["failed"]) == (0, 7, 0)
    assert on_hand() == Decimal("-6")


def test_a_refused_entry_behind_a_gap_waits_like_any_other_and_then_does_not_hold_the_rest(client, register):
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")])
    later = receipt_entries(4, "R1-000002", [("A-1", "2", "1.00")]) + receipt_entries(7, "R1-000003",
                                                                                     [("A-1", "3", "1.00")])
    later[0]["record"]["total"] = "-100000000000.00"

    held = push(client, later).json()
    assert (held["applied"], held["failed"], held["waiting"], held["missing"]) == (0, 0, 6, {"from": 1, "through": 3})

    filled = push(client, entries).json()

    assert (filled["applied"], filled["released"], filled["last_applied_entry_no"], filled["missing"]) \
        == (3, 6, 9, None)
    assert SyncEntry.objects.get(entry_no=4).state == "failed"
    assert on_hand() == Decimal("-6")


def test_a_level_overflow_fails_only_its_own_entry(client, register):
    # Each quantity is within the system's bound, but the second sale would
    # take the level beyond it: that entry fails with the ledger's reason,
    # the others (before and after it) are applied.
    big = "600000000.000"
    entries = receipt_entries(1, "R1-000001", [("A-1", big, "0.00")])
    entries += receipt_entries(4, "R1-000002", [("A-1", big, "0.00")])
    entries += receipt_entries(7, "R1-000003", [("A-1", "-1", "1.00")])  # a return: back within bounds

    body = push(client, entries).json()

    assert (body["applied"], body["failed"], body["last_applied_entry_no"]) == (8, 1, 9), body["failures"]
    (failure,) = body["failures"]
    assert failure["entry_no"] == 5
    assert "bound" in failure["reason"]
    assert on_hand() == Decimal("-599999999")
    assert list(Receipt.objects.order_by("receipt_no").values_list("receipt_no", flat=True)) == [
        "R1-000001", "R1-000002", "R1-000003"]
    # The line is kept without a move, as for any line the ledger refuses; a retry fills it in.
    assert ReceiptLine.objects.get(receipt__receipt_no="R1-000002").stock_move_id is None


def test_a_person_skips_a_failed_entry_with_a_reason_and_the_register_is_clear_again(client, register):
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")])
    entries[0]["record"]["total"] = "100000000000.00"
    push(client, entries)
    failed = SyncEntry.objects.get(entry_no=1)

    with pytest.raises(InvalidInput):
        entries_skip(register_id=register.pk, entry_ids=[failed.pk], reason=" ", user="alice")
    assert entries_retry(register_id=register.pk) == {"applied": 0, "failed": 1}  # still too large
    assert entries_skip(register_id=register.pk, entry_ids=[failed.pk], reason="booked by hand", user="alice") == 1

    failed.refresh_from_db()
    assert failed.state == "skipped"
    assert (failed.result["reason"], failed.result["by"], failed.result["failure"]["field"]) == (
        "booked by hand", "alice", "record.total")
    register.refresh_from_db()
    assert register.last_error == ""
    assert entries_retry(register_id=register.pk) == {"applied": 0, "failed": 0}  # a skipped entry stays skipped
    assert push(client, entries).json()["duplicates"][0]["state"] == "skipped"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({}, "entries", "must be a list"),
        ({"entries": [{"entry_no": 1, "table": None, "record_id": "x", "record": {}}]}, "entries[0].table",
         "required, a table name"),
        ({"entries": [{"entry_no": 0, "table": "customer", "record_id": "c", "record": {"customer_no": "C"}}]},
         "entries[0].entry_no", "must be a whole number from 1 to 9223372036854775807"),
        ({"entries": [{"entry_no": 2**70, "table": "customer", "record_id": "c", "record": {"customer_no": "C"}}]},
         "entries[0].entry_no", "must be a whole number from 1 to 9223372036854775807"),
        ({"entries": [{"entry_no": 1, "table": "customer", "record_id": "", "record": {"customer_no": "C"}}]},
         "entries[0].record_id", "required, at most 200 characters"),
    ],
)
def test_each_kind_of_bad_envelope_is_named(client, body, field, reason):
    response = client.post(URL.format("R1"), body, format="json")

    assert response.status_code == 400
    assert [(e["field"], e["reason"]) for e in response.json()["errors"]] == [(field, reason)]
    assert SyncEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("table", "record", "field", "reason"),
    [
        ("customer", {"name": "x"}, "record.customer_no", "required"),
        ("loyalty_points_v2_table", {"points": 3}, "table",
         "unknown table 'loyalty_points_v2_table': must be one of pos_process, receipt, receipt_line, payment_line, "
         "customer, stock_count"),
        ("receipt", {"receipt_no": "R", "created_at": "2026-03-02T09:00:00", "total": "1.00"}, "record.created_at",
         "needs a time zone (e.g. +00:00)"),
        ("receipt", {"receipt_no": "R", "created_at": "0001-01-01T03:00:00+05:00", "total": "1.00"},
         "record.created_at", "must be between 1970-01-01 and 2199-12-31 (UTC)"),
    ],
)
def test_each_kind_of_bad_record_is_named_on_its_failed_entry(client, table, record, field, reason):
    response = client.post(URL.format("R1"), {"entries": [{"entry_no": 1, "table": table, "record_id": "x",
                                                           "record": record}]}, format="json")

    assert response.status_code == 200
    assert [(f["field"], f["reason"]) for f in response.json()["failures"]] == [(field, reason)]
    assert SyncEntry.objects.get().state == "failed"


def test_a_zone_offset_beyond_postgresql_s_16_hours_is_stored_in_utc_not_a_500(client, register):
    # The cabinet readings' bug found by the API fuzzing, the same here: PostgreSQL refused -21:33 (500).
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")], created_at="2026-03-02T09:00:00-21:33")

    response = push(client, entries)

    assert response.status_code == 200
    assert Receipt.objects.get().created_at.isoformat() == "2026-03-03T06:33:00+00:00"
    assert on_hand() == Decimal("-1")


def test_missing_or_wrong_token_is_401_and_another_registers_token_is_403(register, store):
    make_register(code="R2", location=store)
    other = token_issue(kind=ApiToken.Kind.REGISTER, subject="R2")
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")])
    anonymous, wrong, foreign = APIClient(), APIClient(), APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    foreign.credentials(HTTP_AUTHORIZATION=f"Token {other}")

    statuses = [push(c, entries).status_code for c in (anonymous, wrong, foreign)]

    assert statuses == [401, 401, 403]
    assert push(foreign, entries).json()["errors"][0]["reason"] == "This token belongs to another device."
    assert SyncEntry.objects.count() == 0


def test_a_batch_above_records_per_run_is_413_with_the_limit(client, register):
    register.records_per_run = 3
    register.save()

    response = push(client, receipt_entries(1, "R1-000001", [("A-1", "1", "1.00"), ("A-1", "1", "1.00")]))

    assert response.status_code == 413
    assert response.json()["limit"] == 3
    assert response.json()["errors"][0]["reason"] == "4 entries; at most 3 per request for register R1"
    assert SyncEntry.objects.count() == 0


def test_unknown_sku_fails_its_entry_keeps_the_sale_and_retry_applies_it_once_imported(client, register):
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00"), ("NEW-1", "3", "2.00")])
    entries += receipt_entries(5, "R1-000002", [("A-1", "1", "1.00")])

    body = push(client, entries).json()

    assert (body["applied"], body["failed"], body["last_applied_entry_no"]) == (6, 1, 7)
    assert body["failures"] == [{"entry_no": 3, "record_id": "receipt_line:R1-000001:2",
                                 "field": "sku", "code": "unknown_article", "reason": "unknown sku 'NEW-1'"}]
    line = ReceiptLine.objects.get(sku="NEW-1")
    assert (line.article_id, line.stock_move_id, line.quantity) == (None, None, Decimal("3.000"))
    failed = SyncEntry.objects.get(entry_no=3)
    assert (failed.state, failed.attempts, failed.last_error) == ("failed", 1, "sku: unknown sku 'NEW-1'")
    assert entries_retry(register_id=register.pk) == {"applied": 0, "failed": 1}

    new = make_article(sku="NEW-1")
    assert entries_retry(register_id=register.pk) == {"applied": 1, "failed": 0}
    assert entries_retry(register_id=register.pk) == {"applied": 0, "failed": 0}

    line.refresh_from_db()
    assert (line.article_id, line.stock_move.quantity) == (new.pk, Decimal("-3"))
    assert on_hand("NEW-1") == Decimal("-3")
    assert on_hand("A-1") == Decimal("-2")
    failed.refresh_from_db()
    assert (failed.state, failed.attempts, failed.last_error) == ("applied", 3, "")


def test_settings_endpoint_gives_the_node_its_configuration(client, register):
    register.tables = ["receipt", "receipt_line"]
    register.records_per_run = 250
    register.save()

    response = client.get("/api/v1/registers/R1/settings/")

    assert response.status_code == 200
    assert response.json() == {
        "code": "R1", "name": "Till R1", "location": "S1", "location_name": "Store 1", "sync_type": "push",
        "tables": ["receipt", "receipt_line"], "records_per_run": 250, "interval_seconds": 60, "currency": "EUR",
        "last_applied_entry_no": 0,
    }


def test_staff_reads_receipts_and_register_state(client, staff_client):
    push(client, receipt_entries(1, "R1-000001", [("A-1", "2", "1.20")]))
    push(client, receipt_entries(10, "R1-000009", [("A-1", "1", "1.20")]))

    receipts = staff_client.get("/api/v1/registers/R1/receipts/").json()
    status = staff_client.get("/api/v1/registers/R1/").json()

    assert receipts["count"] == 1
    assert receipts["results"][0]["lines"] == [{"line_no": 1, "sku": "A-1", "barcode": "", "quantity": "2.000",
                                                "unit_price": "1.20", "discount": "0.00",
                                                "stock_move_id": StockMove.objects.get().pk}]
    assert (status["last_applied_entry_no"], status["missing"], status["entries"]) == (
        3, {"from": 4, "through": 9}, {"applied": 3, "waiting": 3})


def test_customers_processes_and_counts_are_applied_and_updated_by_later_entries(client, register):
    process = {"process_no": "P-1", "register": "R1", "opened_at": "2026-03-02T08:00:00+00:00", "closed_at": None,
               "cashier": "Eve", "status": "open"}
    customer = {"customer_no": "C-1", "name": "Ada", "email": "ada@example.com", "card_no": "K-1"}
    sale = receipt_entries(4, "R1-000001", [("A-1", "1", "1.00")])
    sale[0]["record"].update(process_no="P-1", customer_no="C-1")
    unknown_customer = receipt_entries(7, "R1-000002", [])[:1]
    unknown_customer[0]["record"].update(process_no="P-1", customer_no="C-2")
    entries = [
        {"entry_no": 1, "table": "pos_process", "record_id": "pos_process:P-1", "record": process},
        {"entry_no": 2, "table": "customer", "record_id": "customer:C-1", "record": customer},
        {"entry_no": 3, "table": "stock_count", "record_id": "stock_count:A-1",
         "record": {"sku": "A-1", "counted_qty": "40.000", "counted_at": "2026-03-02T07:00:00+00:00"}},
        *sale[:3], *unknown_customer,
        {"entry_no": 8, "table": "pos_process", "record_id": "pos_process:P-1",
         "record": {**process, "closed_at": "2026-03-02T18:00:00+00:00", "status": "closed"}},
        {"entry_no": 9, "table": "customer", "record_id": "customer:C-1", "record": {**customer, "name": "Ada L."}},
    ]

    body = push(client, entries).json()

    assert (body["applied"], body["failed"], body["last_applied_entry_no"]) == (9, 0, 9)
    first, second = Receipt.objects.order_by("receipt_no")
    assert (first.customer.name, first.customer.card_no, first.process.status) == ("Ada L.", "K-1", "closed")
    assert (second.customer.customer_no, second.customer.name) == ("C-2", "")  # known by number only
    assert first.process.closed_at.isoformat() == "2026-03-02T18:00:00+00:00"
    assert on_hand() == Decimal("39")  # counted 40, then sold 1
    assert StockMove.objects.get(kind="count").idempotency_key == "pos:R1:count:A-1:2026-03-02T07:00:00+00:00"


@pytest.mark.postgres  # SQLite splits large inserts by its parameter limit; PostgreSQL uses COPY
def test_a_push_costs_the_same_statements_for_one_receipt_or_forty(client, register):
    make_article(sku="B-1")
    # The stock levels exist (creating one costs two statements, once).
    push(client, receipt_entries(1, "R1-000000", [("A-1", "1", "1.00"), ("B-1", "1", "1.00")]))
    small = receipt_entries(5, "R1-000001", [("A-1", "1", "1.00"), ("B-1", "2", "1.00")])
    large = []
    for n in range(40):
        large += receipt_entries(9 + n * 4, f"R1-1{n:05d}", [("A-1", "1", "1.00"), ("B-1", "2", "1.00")])

    with CaptureQueriesContext(connection) as one:
        assert push(client, small).json()["applied"] == 4
    with CaptureQueriesContext(connection) as forty:
        assert push(client, large).json()["applied"] == 160

    assert len(forty.captured_queries) == len(one.captured_queries)


def test_the_openapi_schema_describes_the_register_contract(staff_client):
    schema = staff_client.get("/api/schema/", {"format": "json"}).json()

    push = schema["paths"]["/api/v1/registers/{code}/entries/"]["post"]
    assert set(push["responses"]) == {"200", "400", "401", "403", "404", "409", "413", "415", "429"}
    outbox = schema["paths"]["/api/v1/sync/outbox/"]["get"]
    assert {"registerNodeToken": []} in outbox["security"]
    assert set(schema["components"]["schemas"]["OutboxPageOut"]["properties"]) == {
        "register", "entries", "last_entry_no", "more"}


def test_receipt_list_costs_the_same_queries_for_one_receipt_or_ten(client, staff_client):
    push(client, receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")]))
    with CaptureQueriesContext(connection) as one:
        assert staff_client.get("/api/v1/registers/R1/receipts/").json()["count"] == 1
    for n in range(2, 11):
        push(client, receipt_entries(1 + (n - 1) * 3, f"R1-{n:06d}", [("A-1", "1", "1.00")]))
    with CaptureQueriesContext(connection) as ten:
        assert staff_client.get("/api/v1/registers/R1/receipts/").json()["count"] == 10

    assert len(ten.captured_queries) == len(one.captured_queries)


def test_a_pulled_page_keeps_a_malformed_but_numbered_entry_failed_and_applies_the_rest(register):
    # A pull has no one to answer 400 to: refusing the page would stop the
    # register's pull for good.
    from pos.services.apply import entries_receive

    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")]) + receipt_entries(
        4, "R1-000002", [("A-1", "2", "1.00")])
    entries[1]["record"] = ["not", "an", "object"]
    entries[4]["record_id"] = ""

    result = entries_receive(register_id=register.pk, entries=entries, keep_malformed=True)

    assert (result.applied, result.failed, result.last_applied_entry_no) == (5, 1, 6)
    assert result.failures[0]["entry_no"] == 2 and "unknown table '(record is list)'" in result.failures[0]["reason"]
    assert SyncEntry.objects.get(entry_no=5).record_id == "entry:5"  # applied, under a made-up record id
    assert on_hand() == Decimal("-2")  # the first receipt's line is the failed entry
    with pytest.raises(InvalidInput):  # without an entry no. nothing can be kept
        entries_receive(register_id=register.pk, entries=[{"entry_no": "x", "table": "receipt"}],
                        keep_malformed=True)


def test_text_no_database_can_store_fails_its_entry_alone_also_on_retry(client, register):
    # A NUL in one record's barcode and an unpaired surrogate in another's:
    # each entry is kept (a storable copy) and failed naming the field; the
    # other entries are applied, the watermark passes them, a retry fails them again.
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00"), ("A-1", "2", "1.00")])
    entries[1]["record"]["barcode"] = "12\u000034"
    entries[2]["record"]["sku"] = "A-\ud800"
    sent = json.dumps({"entries": entries})  # ASCII escapes, as a register would send them

    body = client.post(URL.format("R1"), sent, content_type="application/json").json()

    assert (body["failed"], body["last_applied_entry_no"]) == (2, len(entries)), body
    assert sorted((f["entry_no"], f["field"]) for f in body["failures"]) == [(2, "record.barcode"), (3, "record.sku")]
    assert all("cannot be stored" in f["reason"] for f in body["failures"])
    kept = SyncEntry.objects.get(entry_no=2)
    assert kept.record["barcode"] == "12\ufffd34"
    assert entries_retry(register_id=register.pk) == {"applied": 0, "failed": 2}
    again = client.post(URL.format("R1"), sent, content_type="application/json").json()
    assert again["duplicate"] == len(entries)  # the same batch again is known


def test_a_figure_python_reads_but_no_till_writes_fails_its_entry_even_behind_a_gap(client, register):
    # "1e400" waits behind a gap without a 500, and fails alone once the gap is filled;
    # "1_000" (Python's digit grouping) is not taken for a thousand.
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00"), ("A-1", "1", "1.00")])
    entries[1]["record"]["quantity"] = "1e400"
    entries[2]["record"]["quantity"] = "1_000"

    waiting = push(client, entries[1:]).json()
    filled = push(client, entries[:1]).json()

    assert waiting["waiting"] == len(entries) - 1
    assert filled["last_applied_entry_no"] == len(entries)
    failed = dict(SyncEntry.objects.filter(state="failed").values_list("entry_no", "last_error"))
    assert sorted(failed) == [2, 3]
    assert all("not a plain decimal number" in reason for reason in failed.values())
    assert not StockMove.objects.exists()  # neither line moved stock


def test_a_receipt_dated_in_year_1_fails_alone_and_never_reaches_the_reports(client, register):
    # Such a time was taken before and broke the sales rollup on every run afterwards.
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")], created_at="0001-01-01T00:00:00-14:00")
    entries += receipt_entries(4, "R1-000002", [("A-1", "1", "1.00")], created_at="9999-12-31T23:59:59+14:00")
    entries += receipt_entries(7, "R1-000003", [("A-1", "1", "1.00")])

    body = push(client, entries).json()

    assert [(f["entry_no"], f["field"], f["reason"]) for f in body["failures"]] == [
        (1, "record.created_at", "must be between 1970-01-01 and 2199-12-31 (UTC)"),
        (4, "record.created_at", "must be between 1970-01-01 and 2199-12-31 (UTC)")]
    # Their lines still arrive (a failed header never loses a sale), under no such date.
    assert {r.year for r in Receipt.objects.values_list("created_at", flat=True)} <= set(range(1970, 2200))
