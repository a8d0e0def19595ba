"""Data Transfer → Synchronization in the admin: registers, entries with
pretty JSON, Synchronize, retry, and Export on the POS process and receipt
cards. Lists cost a fixed number of queries."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pos.models import CashRegister, PosProcess, Receipt, SyncEntry
from pos.services.apply import entries_receive
from pos.services.transfer import register_token_rotate
from posinv.models import StockLevel, StockMove
from tests.factories import make_article
from tests.pos.factories import make_register, receipt_entries

pytestmark = pytest.mark.django_db


@pytest.fixture
def register(store, article):
    register = make_register(code="R1", location=store)
    entries = receipt_entries(1, "R1-000001", [("A-1", "2", "1.20"), ("NEW-1", "1", "3.00")])
    entries[0]["record"]["process_no"] = "P-1"
    entries_receive(register_id=register.pk, entries=entries)
    return register


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_entries_list_shows_state_and_the_entry_page_shows_pretty_json(admin_client, register):
    listing = admin_client.get(reverse("admin:pos_syncentry_changelist"), {"register__id__exact": register.pk})
    failed = SyncEntry.objects.get(state="failed")
    page = admin_client.get(reverse("admin:pos_syncentry_change", args=[failed.pk]))

    assert listing.status_code == 200
    text = listing.content.decode()
    assert "receipt_line:R1-000001:2" in text and "Failed" in text and "sku: unknown sku &#x27;NEW-1&#x27;" in text
    body = page.content.decode()
    assert '<pre style="white-space: pre-wrap; margin: 0">{\n  &quot;barcode&quot;: &quot;&quot;,' in body
    assert "&quot;reason&quot;: &quot;unknown sku &#x27;NEW-1&#x27;&quot;" in body


def test_entries_list_costs_the_same_queries_for_4_or_34_entries(admin_client, register):
    url = reverse("admin:pos_syncentry_changelist")
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for n in range(2, 12):
        entries_receive(register_id=register.pk, entries=receipt_entries(n * 10, f"R1-{n:06d}", [("A-1", "1", "1")]))
    with CaptureQueriesContext(connection) as many:
        admin_client.get(url)
    assert SyncEntry.objects.count() == 4 + 10 * 3
    assert len(many.captured_queries) == len(few.captured_queries)


def test_register_list_shows_failed_entries_and_the_gap_at_a_glance(admin_client, register, store):
    entries_receive(register_id=register.pk, entries=receipt_entries(9, "R1-000009", [("A-1", "1", "1.00")]))
    make_register(code="R2", location=store)

    response = admin_client.get(reverse("admin:pos_cashregister_changelist"))

    text = response.content.decode()
    assert response.status_code == 200
    assert '<span style="color:#ba2121">5–8</span>' in text
    assert 'state__exact=failed" style="color:#ba2121;font-weight:bold">1</a>' in text


def test_retry_action_applies_failed_entries_once_the_article_exists(admin_client, register):
    make_article(sku="NEW-1")
    failed = SyncEntry.objects.get(state="failed")

    response = admin_client.post(
        reverse("admin:pos_syncentry_changelist"),
        {"action": "retry_action", "_selected_action": [failed.pk]},
        follow=True,
    )

    assert messages_of(response) == ["1 applied, 0 still failed"]
    failed.refresh_from_db()
    assert failed.state == "applied"
    assert StockLevel.objects.get(article__sku="NEW-1").on_hand == Decimal("-1")


def test_synchronize_reports_an_unreachable_node_and_a_push_register_without_url(admin_client, register, store):
    pull = make_register(code="R2", location=store, sync_type="pull", node_url="http://127.0.0.1:9")
    register_token_rotate(register_id=pull.pk)  # a pull register keeps its token encrypted

    response = admin_client.post(
        reverse("admin:pos_cashregister_changelist"),
        {"action": "synchronize_action", "_selected_action": [register.pk, pull.pk]},
        follow=True,
    )

    got = messages_of(response)
    assert got[0] == ("R1: node_url: register R1 is push type and has no node URL to ask; "
                      "it sends on its own every interval")
    assert got[1].startswith("R2: unreachable: ")
    pull.refresh_from_db()
    assert pull.last_error.startswith("GET outbox: ")


def test_export_on_the_process_card_with_receipts_reapplies_without_moving_stock_twice(admin_client, register):
    process = PosProcess.objects.get(process_no="P-1")
    moves_before = list(StockMove.objects.values_list("pk", flat=True))
    card = admin_client.get(reverse("admin:pos_posprocess_change", args=[process.pk]))

    response = admin_client.post(reverse("admin:pos_posprocess_export", args=[process.pk]),
                                 {"include_receipts": "on"}, follow=True)

    assert 'name="include_receipts"' in card.content.decode()
    exported = list(SyncEntry.objects.filter(direction="out").order_by("entry_no"))
    assert [e.record_id for e in exported] == ["pos_process:P-1", "receipt:R1-000001", "receipt_line:R1-000001:1",
                                               "receipt_line:R1-000001:2", "payment_line:R1-000001:1"]
    assert [e.state for e in exported] == ["applied", "applied", "applied", "failed", "applied"]
    assert messages_of(response) == ["Exported 5 entries (no. 1–5) and applied again; 1 failed"]
    assert list(StockMove.objects.values_list("pk", flat=True)) == moves_before
    assert StockLevel.objects.get(article__sku="A-1").on_hand == Decimal("-2")


def test_export_on_a_register_node_writes_pending_outbox_entries(admin_client, register, settings):
    settings.POSINV_NODE = "register"
    receipt = Receipt.objects.get(receipt_no="R1-000001")

    response = admin_client.post(reverse("admin:pos_receipt_export", args=[receipt.pk]), follow=True)

    assert messages_of(response) == ["Exported 4 entries (no. 1–4) to the outbox"]
    assert list(SyncEntry.objects.filter(direction="out").values_list("state", flat=True)) == ["pending"] * 4


def test_register_form_keeps_tables_in_contract_order_and_refuses_bad_records_per_run(admin_client, store):
    url = reverse("admin:pos_cashregister_add")
    data = {"location": store.pk, "code": "R9", "name": "Till 9", "active": "on", "sync_type": "push",
            "tables": ["receipt_line", "receipt"], "records_per_run": "0", "interval_seconds": "60",
            "node_url": "", "currency": "EUR"}

    refused = admin_client.post(url, data)
    data["records_per_run"] = "750"
    saved = admin_client.post(url, data)

    assert "Ensure this value is greater than or equal to 1." in refused.content.decode()
    assert saved.status_code == 302
    register = CashRegister.objects.get(code="R9")
    assert (register.tables, register.records_per_run) == (["receipt", "receipt_line"], 750)


def test_receipt_list_counts_lines_without_a_stock_move(admin_client, register):
    response = admin_client.get(reverse("admin:pos_receipt_changelist"))

    assert response.status_code == 200
    assert '<td class="field-lines_without_move">1</td>' in response.content.decode()


def test_register_list_costs_the_same_queries_for_1_or_8_registers(admin_client, register, store):
    url = reverse("admin:pos_cashregister_changelist")
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for n in range(2, 9):
        other = make_register(code=f"R{n}", location=store)
        entries_receive(register_id=other.pk, entries=receipt_entries(3, f"R{n}-1", [("NEW-1", "1", "1.00")]))
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)

    assert response.content.decode().count('<span style="color:#ba2121">1–2</span>') == 7
    assert len(many.captured_queries) == len(few.captured_queries)


def test_skip_asks_for_a_reason_then_parks_the_failed_entry(admin_client, register):
    failed = SyncEntry.objects.get(state="failed")
    url = reverse("admin:pos_syncentry_changelist")

    asked = admin_client.post(url, {"action": "skip_action", "_selected_action": [failed.pk]})
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Skip these entries" in page and failed.record_id in page
    refused = admin_client.post(url, {"action": "skip_action", "_selected_action": [failed.pk], "apply": "1",
                                      "reason": "  "})
    assert "This field is required" in refused.content.decode()
    done = admin_client.post(url, {"action": "skip_action", "_selected_action": [failed.pk], "apply": "1",
                                   "reason": "sold as a gift card, booked by hand"}, follow=True)

    assert messages_of(done) == ["1 entries skipped: sold as a gift card, booked by hand"]
    failed.refresh_from_db()
    assert (failed.state, failed.result["reason"], failed.result["by"]) == (
        "skipped", "sold as a gift card, booked by hand", "admin")
    assert StockLevel.objects.filter(article__sku="NEW-1").count() == 0  # nothing moved


def test_retry_and_skip_need_their_permissions(client, register, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_syncentry"))
    client.force_login(user)
    failed = SyncEntry.objects.get(state="failed")
    url = reverse("admin:pos_syncentry_changelist")

    listing = client.get(url).content.decode()
    assert "skip_action" not in listing and "retry_action" not in listing
    for action in ("skip_action", "retry_action"):
        client.post(url, {"action": action, "_selected_action": [failed.pk], "apply": "1", "reason": "x"})
    failed.refresh_from_db()
    assert failed.state == "failed"

    user.user_permissions.add(Permission.objects.get(codename="skip_syncentry"))
    user = django_user_model.objects.get(pk=user.pk)  # permissions are cached per user object
    client.force_login(user)
    assert "skip_action" in client.get(url).content.decode()
