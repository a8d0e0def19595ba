"""Customers: matching, purchase history and totals, and
GET /api/v1/customers/{no}/recommendations/ from co-purchase counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backoffice.selectors.customers import customer_match
from pos.models import Customer
from posinv.exceptions import InvalidInput
from tests.backoffice.factories import make_register, sell, stock_receive
from tests.factories import make_article, make_location

T = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def baskets(db):
    """ANN buys BREAD often (2 receipts) and JAM once. BEN bought BREAD with
    BUTTER and MILK; CAT bought JAM with BUTTER and TEA; DAN bought BREAD and
    BUTTER; EVE (no overlap with ANN) bought COFFEE only."""
    store = make_location(code="S1")
    register = make_register(location=store, code="R1")
    for sku in ["BREAD", "JAM", "BUTTER", "MILK", "TEA", "COFFEE"]:
        stock_receive(article=make_article(sku=sku, name=sku.title()), location=store, quantity="100")
    sell(register=register, at=T, customer_no="ANN", items=[("BREAD", "1", "2.50"), ("JAM", "1", "3.00")])
    sell(register=register, at=T.replace(day=5), customer_no="ANN", items=[("BREAD", "2", "2.50")])
    sell(
        register=register,
        at=T,
        customer_no="BEN",
        items=[("BREAD", "1", "2.50"), ("BUTTER", "1", "1.80"), ("MILK", "1", "0.90")],
    )
    sell(
        register=register,
        at=T,
        customer_no="CAT",
        items=[("JAM", "1", "3.00"), ("BUTTER", "2", "1.80"), ("TEA", "1", "4.00")],
    )
    sell(register=register, at=T, customer_no="DAN", items=[("BREAD", "1", "2.50"), ("BUTTER", "1", "1.80")])
    sell(register=register, at=T, customer_no="EVE", items=[("COFFEE", "9", "5.00")])
    Customer.objects.filter(customer_no="ANN").update(card_no="CARD-7", email="ann@example.com", name="Ann")


def test_recommendations_count_co_purchasers_and_leave_out_what_the_customer_buys_often(baskets, staff_client):
    response = staff_client.get("/api/v1/customers/ANN/recommendations/")

    assert response.status_code == 200
    assert response.json() == {
        "customer_no": "ANN",
        "results": [
            {"sku": "BUTTER", "name": "Butter", "customers": 3},
            {"sku": "JAM", "name": "Jam", "customers": 1},
            {"sku": "MILK", "name": "Milk", "customers": 1},
            {"sku": "TEA", "name": "Tea", "customers": 1},
        ],
    }


def test_recommendations_limit_and_threshold(baskets, staff_client):
    response = staff_client.get("/api/v1/customers/ANN/recommendations/?limit=2&often=1")

    assert [row["sku"] for row in response.json()["results"]] == ["BUTTER", "MILK"]


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ("limit=0", "limit", "Ensure this value is greater than or equal to 1."),
        ("limit=x", "limit", "A valid integer is required."),
        ("often=0", "often", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_bad_recommendation_parameters_are_a_400_naming_the_field(baskets, staff_client, query, field, reason):
    response = staff_client.get(f"/api/v1/customers/ANN/recommendations/?{query}")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"field": field, "reason": reason, "code": response.json()["errors"][0]["code"]}]
    }


def test_an_unknown_customer_is_a_404(baskets, staff_client):
    response = staff_client.get("/api/v1/customers/NOBODY/recommendations/")

    assert response.status_code == 404
    assert response.json()["errors"][0]["reason"] == "no customer 'NOBODY'"


def test_recommendations_need_a_staff_login(baskets, client):
    assert client.get("/api/v1/customers/ANN/recommendations/").status_code in (401, 403)


def test_history_and_totals(baskets, staff_client):
    response = staff_client.get("/api/v1/customers/ANN/")

    body = response.json()
    assert body["customer"] == {"customer_no": "ANN", "name": "Ann", "email": "ann@example.com", "card_no": "CARD-7"}
    assert body["totals"] == {
        "receipts": 2,
        "revenue": "10.50",
        "items": "4.000",
        "first_purchase": "2026-05-04T10:00:00Z",
        "last_purchase": "2026-05-05T10:00:00Z",
    }
    assert body["articles"] == [
        {"sku": "BREAD", "name": "Bread", "receipts": 2, "quantity": "3.000", "revenue": "7.50"},
        {"sku": "JAM", "name": "Jam", "receipts": 1, "quantity": "1.000", "revenue": "3.00"},
    ]
    assert [(r["created_at"], r["location"], r["lines"], r["total"]) for r in body["receipts"]] == [
        ("2026-05-05T10:00:00Z", "S1", 1, "5.00"),
        ("2026-05-04T10:00:00Z", "S1", 2, "5.50"),
    ]


def test_a_customer_is_matched_by_number_card_or_email(baskets, staff_client):
    assert customer_match(customer_no="ANN").customer_no == "ANN"
    assert customer_match(card_no="CARD-7").customer_no == "ANN"
    assert customer_match(email="ANN@example.com").customer_no == "ANN"
    assert customer_match(customer_no="NEW", card_no="nope") is None
    assert staff_client.get("/api/v1/customers/match/?card_no=CARD-7").json()["customer_no"] == "ANN"
    assert staff_client.get("/api/v1/customers/match/?email=x@y.z").status_code == 404
    with pytest.raises(InvalidInput, match="give a customer no., card no. or e-mail"):
        customer_match()
