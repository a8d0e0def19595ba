"""Role groups from the migration, and what each sees and changes in the admin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group

from backoffice.models import PurchaseOrder, Supplier
from backoffice.roles import ROLES
from backoffice.services.purchasing import purchase_order_send, purchase_orders_draft
from backoffice.services.reorder import reorder_level_set
from posinv.services.changes import changes_dispatch
from tests.backoffice.factories import make_register, make_supplier, make_supplier_article, sell, stock_receive
from tests.factories import make_article, make_location


def test_the_migration_created_the_four_groups_with_their_permissions(db):
    groups = {g.name: g for g in Group.objects.filter(name__in=ROLES)}
    assert sorted(groups) == ["cashier", "manager", "purchaser", "stock clerk"]
    cashier = groups["cashier"].permissions.values_list("content_type__app_label", "codename")
    assert sorted(f"{app}.{code}" for app, code in cashier) == [
        "backoffice.view_customerhistory",
        "pos.add_customer",
        "pos.change_customer",
        "pos.view_customer",
        "pos.view_receipt",
        "posinv.view_article",
    ]
    for name, perms in ROLES.items():
        assert groups[name].permissions.count() == len(perms), name


@pytest.fixture
def world(db):
    store = make_location(code="S1")
    supplier = make_supplier(code="FRUIT")
    apple = make_article(sku="APPLE")
    make_supplier_article(supplier=supplier, article=apple, pack_size="5")
    stock_receive(article=apple, location=store, quantity="10")
    reorder_level_set(article_id=apple.pk, location_id=store.pk, reorder_point="8", order_up_to="20")
    sell(
        register=make_register(location=store),
        at=datetime(2026, 5, 4, tzinfo=UTC),
        items=[("APPLE", "5", "1")],
        customer_no="C1",
    )
    changes_dispatch()
    order = purchase_orders_draft().orders[0]
    return order


def login(client, django_user_model, role: str):
    user = django_user_model.objects.create_user(username=role.replace(" ", "_"), password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


PAGES = {
    "reports": "/admin/backoffice/report/sales/",
    "suppliers": "/admin/backoffice/supplier/",
    "add supplier": "/admin/backoffice/supplier/add/",
    "orders": "/admin/backoffice/purchaseorder/",
    "suggestions": "/admin/backoffice/ordersuggestion/",
    "reorder levels": "/admin/backoffice/reorderlevel/",
    "customers": "/admin/backoffice/customerhistory/",
    # other apps' pages the roles include or leave out
    "receipts": "/admin/pos/receipt/",
    "pos customers": "/admin/pos/customer/",
    "cash registers": "/admin/pos/cashregister/",
    "articles": "/admin/posinv/article/",
    "stock levels": "/admin/posinv/stocklevel/",
    "stock moves": "/admin/posinv/stockmove/",
    "api tokens": "/admin/posinv/apitoken/",
}
MINE = {"reports", "suppliers", "add supplier", "orders", "suggestions", "reorder levels", "customers"}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("cashier", {"customers", "receipts", "pos customers", "articles"}),
        ("stock clerk", {"orders", "suggestions", "reorder levels", "articles", "stock levels", "stock moves"}),
        (
            "purchaser",
            {"suppliers", "add supplier", "orders", "suggestions", "reorder levels", "articles", "stock levels"},
        ),
        ("manager", MINE | {"receipts", "pos customers", "cash registers", "articles", "stock levels", "stock moves"}),
    ],
)
def test_each_role_sees_only_its_part(world, client, django_user_model, role, allowed):
    login(client, django_user_model, role)

    seen = {name for name, url in PAGES.items() if client.get(url).status_code == 200}
    refused = {name for name, url in PAGES.items() if client.get(url).status_code == 403}

    assert seen == allowed
    assert refused == set(PAGES) - allowed


def test_only_stock_clerks_and_managers_receive_goods(world, client, django_user_model):
    purchase_order_send(order_id=world.pk)
    url = f"/admin/backoffice/purchaseorder/{world.pk}/receive/"

    assert login(client, django_user_model, "purchaser").get(url).status_code == 403
    clerk = login(client, django_user_model, "stock clerk")
    assert clerk.get(url).status_code == 200
    clerk.post(url, {"delivery_note": "DN-1", "line_1": "15"})
    assert PurchaseOrder.objects.get(pk=world.pk).state == "received"


def test_a_stock_clerk_cannot_send_orders_or_add_suppliers_but_a_purchaser_can(world, client, django_user_model):
    clerk = login(client, django_user_model, "stock clerk")
    assert (
        clerk.post("/admin/backoffice/supplier/add/", {"code": "X", "name": "X", "lead_time_days": 3}).status_code
        == 403
    )
    clerk.post("/admin/backoffice/purchaseorder/", {"action": "send_orders", "_selected_action": [world.pk]})
    assert PurchaseOrder.objects.get(pk=world.pk).state == "draft"

    buyer = login(client, django_user_model, "purchaser")
    buyer.post("/admin/backoffice/purchaseorder/", {"action": "send_orders", "_selected_action": [world.pk]})
    assert PurchaseOrder.objects.get(pk=world.pk).state == "sent"
    response = buyer.post(
        "/admin/backoffice/supplier/add/",
        {
            "code": "VEG",
            "name": "Veg & Co",
            "lead_time_days": "3",
            "active": "on",
            "articles-TOTAL_FORMS": "0",
            "articles-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert Supplier.objects.filter(code="VEG").exists()


def test_the_admin_index_lists_only_the_role_s_models(world, client, django_user_model):
    html = login(client, django_user_model, "cashier").get("/admin/").content.decode()
    assert "/admin/backoffice/customerhistory/" in html
    assert "/admin/backoffice/supplier/" not in html
    assert "/admin/backoffice/report/" not in html


def test_a_stock_clerk_ships_transfers_through_the_api_and_a_purchaser_cannot(world, django_user_model):
    from rest_framework.test import APIClient

    from posinv.models import StockLevel
    from posinv.services.tokens import token_issue
    from retail.services.transfers import TransferLineSpec, transfer_create

    make_location(code="S2")
    order = transfer_create(source_code="S1", destination_code="S2", lines=[TransferLineSpec("APPLE", "2")])

    def api_as(role: str) -> APIClient:
        user = django_user_model.objects.create_user(username=role.replace(" ", "_"), is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind='user', subject=user.username, user=user)}")
        return client

    refused = api_as("purchaser").post(f"/api/v1/transfers/{order.number}/ship/", {}, format="json")
    assert refused.status_code == 403
    assert StockLevel.objects.get(article__sku="APPLE", location__code="S1").on_hand == 5

    shipped = api_as("stock clerk").post(f"/api/v1/transfers/{order.number}/ship/", {}, format="json")
    assert shipped.status_code == 200
    assert StockLevel.objects.get(article__sku="APPLE", location__code="S1").on_hand == 3
