"""The purchasing API's refusals and permissions, and the small commands
(draft orders, role sync, backup's default file)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.test import APIClient

from backoffice.models import PurchaseOrder
from backoffice.roles import ROLES
from backoffice.services.reorder import reorder_level_set
from posinv.models import StockMove
from posinv.services.changes import changes_dispatch
from tests.backoffice.factories import make_register, make_supplier, make_supplier_article, sell, stock_receive
from tests.factories import make_article, make_location


@pytest.fixture
def low_stock(db):
    store = make_location(code="S1")
    apple = make_article(sku="APPLE")
    make_supplier_article(supplier=make_supplier(code="FRUIT"), article=apple, pack_size="6")
    stock_receive(article=apple, location=store, quantity="10")
    reorder_level_set(article_id=apple.pk, location_id=store.pk, reorder_point="8", order_up_to="20")
    sell(register=make_register(location=store), at=datetime(2026, 5, 4, tzinfo=UTC), items=[("APPLE", "5", "1")])
    changes_dispatch()


def api_as(django_user_model, role: str | None) -> APIClient:
    user = django_user_model.objects.create_user(username=role or "plain", password="x", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_drafting_and_sending_need_the_purchaser_role(low_stock, django_user_model):
    clerk = api_as(django_user_model, "stock clerk")
    assert clerk.post("/api/v1/purchase-orders/drafts/").status_code == 403
    assert not PurchaseOrder.objects.exists()

    buyer = api_as(django_user_model, "purchaser")
    drafted = buyer.post("/api/v1/purchase-orders/drafts/")
    assert drafted.status_code == 200
    number = drafted.json()["orders"][0]["number"]
    assert drafted.json()["orders"][0]["lines"] == [
        {"line_no": 1, "sku": "APPLE", "quantity_ordered": "18.000", "quantity_received": "0.000"}
    ]
    assert clerk.post(f"/api/v1/purchase-orders/{number}/send/").status_code == 403
    assert buyer.post(f"/api/v1/purchase-orders/{number}/send/").json()["state"] == "sent"

    again = buyer.post(f"/api/v1/purchase-orders/{number}/send/")
    assert again.status_code == 400
    assert again.json()["errors"][0] == {
        "code": "illegal_transition",
        "field": "state",
        "reason": f"{number} is sent; cannot go to sent",
    }
    assert buyer.post("/api/v1/purchase-orders/PO-999999/send/").status_code == 404


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"delivery_note": "DN", "lines": [{"line_no": 1, "quantity": "0"}]}, {"lines[0].quantity"}),
        ({"delivery_note": "DN", "lines": [{"line_no": 1, "quantity": "1.0001"}]}, {"lines[0].quantity"}),
        ({"delivery_note": "DN", "lines": [{"line_no": 2, "quantity": "1"}]}, {"lines[0].line_no"}),
        ({"delivery_note": "DN", "lines": [{"line_no": 1, "quantity": "19"}]}, {"lines[0].quantity"}),
        ({"lines": [{"line_no": 1, "quantity": "1"}]}, {"delivery_note"}),
    ],
)
def test_a_bad_delivery_over_the_api_is_a_400_per_field_and_moves_nothing(low_stock, django_user_model, body, errors):
    buyer = api_as(django_user_model, "purchaser")
    number = buyer.post("/api/v1/purchase-orders/drafts/").json()["orders"][0]["number"]
    buyer.post(f"/api/v1/purchase-orders/{number}/send/")
    moves = StockMove.objects.count()

    response = api_as(django_user_model, "stock clerk").post(
        f"/api/v1/purchase-orders/{number}/receipts/", body, format="json"
    )

    assert response.status_code == 400
    assert {error["field"] for error in response.json()["errors"]} == errors
    assert StockMove.objects.count() == moves
    assert PurchaseOrder.objects.get(number=number).state == "sent"


def test_the_draft_command_lists_orders_and_skips(low_stock):
    out = io.StringIO()
    call_command("purchase_orders_draft", stdout=out)
    order = PurchaseOrder.objects.get()
    assert out.getvalue().splitlines() == [f"{order.number}: FRUIT (Supplier FRUIT) -> S1", "1 draft orders, 1 lines"]

    out = io.StringIO()
    call_command("purchase_orders_draft", stdout=out)
    assert out.getvalue().splitlines()[-1] == "0 draft orders, 0 lines"
    assert "skipped: already on order" in out.getvalue()


def test_roles_sync_restores_a_changed_group(db):
    cashier = Group.objects.get(name="cashier")
    cashier.permissions.clear()

    out = io.StringIO()
    call_command("roles_sync", stdout=out)

    assert cashier.permissions.count() == len(ROLES["cashier"])
    assert "cashier: 6 permissions" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_backup_without_output_writes_into_var_backups(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()

    call_command("backup", stdout=out)

    files = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert len(files) == 2 and files[1] == files[0] + ".sha256"
    assert f"backup written: {tmp_path / 'backups' / files[0]}" in out.getvalue()


def test_decimal_quantities_round_trip_as_strings(low_stock, django_user_model):
    """Quantities in the API are strings with three decimals, never floats."""
    buyer = api_as(django_user_model, "purchaser")
    line = buyer.post("/api/v1/purchase-orders/drafts/").json()["orders"][0]["lines"][0]
    assert Decimal(line["quantity_ordered"]) == Decimal("18") and isinstance(line["quantity_ordered"], str)
