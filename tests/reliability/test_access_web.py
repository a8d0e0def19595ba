"""Access for people: roles enforced in the admin and the API, CSRF on for
session-authenticated writes."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from posinv.models import StockLevel, StockMove
from posinv.services.tokens import token_issue

pytestmark = pytest.mark.django_db

MOVE = {"moves": [{"kind": "adjustment", "idempotency_key": "acc-1", "sku": "PEN-01", "location": "S1",
                   "quantity": "-40"}]}


def _role_user(django_user_model, role: str, *, staff: bool = True):
    user = django_user_model.objects.create_user(username=role.replace(" ", "_"), password="pw-123456",
                                                 is_staff=staff)
    if role != "nobody":
        user.groups.add(Group.objects.get(name=role))
    return user


def _token_client(world, user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind='user', subject=user.username, user=user)}")
    return client


def _on_hand(world) -> str:
    return str(StockLevel.objects.get(article=world.article, location=world.store).on_hand)


@pytest.mark.parametrize(
    "url,cashier,clerk",
    [
        ("/admin/posinv/stockmove/", 403, 200),
        ("/admin/posinv/stocklevel/", 403, 200),
        ("/admin/posinv/apitoken/", 403, 403),
        ("/admin/auth/user/", 403, 403),
        ("/admin/pos/receipt/", 200, 403),
    ],
)
def test_admin_pages_follow_the_role(world, django_user_model, url, cashier, clerk):
    pages = {}
    for role in ("cashier", "stock clerk"):
        client = Client()
        client.force_login(_role_user(django_user_model, role))
        pages[role] = client.get(url).status_code
    assert pages == {"cashier": cashier, "stock clerk": clerk}


def test_a_user_without_staff_reaches_no_api_and_no_admin(world, django_user_model):
    user = _role_user(django_user_model, "manager", staff=False)
    api = _token_client(world, user)
    assert api.get("/api/v1/stock-levels/").status_code == 403
    assert api.post("/api/v1/stock-moves/", MOVE, format="json").status_code == 403
    browser = Client()
    browser.force_login(user)
    assert browser.get("/admin/").status_code == 302  # sent to the login page
    assert _on_hand(world) == "100.000"


def test_a_cashier_cannot_receive_purchase_orders_through_the_api(world, django_user_model):
    api = _token_client(world, _role_user(django_user_model, "cashier"))
    response = api.post("/api/v1/purchase-orders/PO-1/receipts/", {}, format="json")
    assert response.status_code == 403


def test_a_cashier_cannot_post_stock_moves_through_the_api(world, django_user_model):
    # given a cashier (staff, to log in to the admin) with an API token
    api = _token_client(world, _role_user(django_user_model, "cashier"))
    # when the cashier posts a stock adjustment
    response = api.post("/api/v1/stock-moves/", MOVE, format="json")
    # then it is refused and nothing moved
    assert response.status_code == 403
    assert _on_hand(world) == "100.000"


def test_a_cashier_cannot_ship_transfers_through_the_api(world, django_user_model):
    api = _token_client(world, _role_user(django_user_model, "cashier"))
    response = api.post("/api/v1/transfers/T-1/ship/", {}, format="json")
    assert response.status_code == 403


def test_a_session_post_without_csrf_token_is_refused_and_moves_nothing(world, django_user_model):
    # given a manager logged in to the admin (session cookie), with CSRF checks on as in production
    user = django_user_model.objects.create_user(username="sess", password="pw-123456", is_staff=True,
                                                 is_superuser=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    # when a page elsewhere makes the browser post stock moves without the CSRF token
    forged = browser.post("/api/v1/stock-moves/", MOVE, content_type="application/json")
    # then it is refused and nothing moved
    assert forged.status_code == 403
    assert "CSRF Failed" in forged.json()["errors"][0]["reason"]
    assert StockMove.objects.filter(idempotency_key="acc-1").count() == 0
    assert _on_hand(world) == "100.000"
    # while the same post with the CSRF token of the session is accepted
    browser.get("/admin/")
    token = browser.cookies["csrftoken"].value
    honest = browser.post("/api/v1/stock-moves/", MOVE, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert honest.status_code == 200
    assert _on_hand(world) == "60.000"


def test_an_admin_form_post_without_csrf_token_is_refused(world, django_user_model):
    user = django_user_model.objects.create_user(username="sess2", password="pw-123456", is_staff=True,
                                                 is_superuser=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post("/admin/posinv/location/add/", {"code": "EVIL", "name": "x", "kind": "store"})
    assert response.status_code == 403
    assert b"CSRF" in response.content
    from posinv.models import Location

    assert not Location.objects.filter(code="EVIL").exists()
