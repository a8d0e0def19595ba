"""The staff API through HTTP: token and session auth, article lookup,
stock levels (pinned query count), posting moves (400, 409, duplicates)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from posinv.models import ApiToken, Price, PriceGroup, StockLevel, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_issue
from tests.factories import make_article, make_barcode, make_location, valid_ean13

pytestmark = pytest.mark.django_db
EAN = valid_ean13("400638133393")
UPC = "036000291452"  # UPC-A; its EAN-13 form is 0036000291452


@pytest.fixture
def token_client(staff_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind='user', subject='clerk', user=staff_user)}")
    return client


@pytest.fixture
def catalog(db):
    apple = make_article(sku="A-1", name="Apple", unit_weight_g=Decimal("150"))
    make_barcode(article=apple, code=EAN)
    make_barcode(article=apple, code=UPC, pack_qty=Decimal("6"))
    retail = PriceGroup.objects.create(code="RETAIL", name="Retail")
    Price.objects.create(article=apple, group=retail, amount=Decimal("0.40"), valid_from="2020-01-01")
    Price.objects.create(article=apple, group=retail, amount=Decimal("0.45"), valid_from="2024-01-01")
    Price.objects.create(article=apple, group=retail, amount=Decimal("9.99"), valid_from="2999-01-01")
    make_location(code="S1")
    make_location(code="K1", refuse_negative=True)
    return apple


def sale(key, qty="-1", **where):
    return {"kind": "sale", "idempotency_key": key, "quantity": qty, "location": "S1", "sku": "A-1", **where}


def test_requests_without_a_token_or_with_a_device_token_are_refused(catalog):
    anonymous = APIClient().get("/api/v1/articles/lookup/", {"code": "A-1"})
    device = APIClient()
    device.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind='register', subject='R1')}")

    as_device = device.get("/api/v1/articles/lookup/", {"code": "A-1"})

    assert anonymous.status_code == 401
    assert as_device.status_code == 403
    assert as_device.json() == {"errors": [{"reason": "Staff users only.", "code": "permission_denied"}]}


def test_lookup_by_sku_returns_article_barcodes_and_todays_prices(token_client, catalog):
    response = token_client.get("/api/v1/articles/lookup/", {"code": "A-1"})

    assert response.status_code == 200
    body = response.json()
    assert (body["matched_by"], body["pack_qty"]) == ("sku", "1.000")
    assert body["article"]["unit_weight_g"] == "150.000"
    assert [b["code"] for b in body["article"]["barcodes"]] == [UPC, EAN]
    assert body["prices"] == [{"group": "RETAIL", "amount": "0.45", "currency": "EUR", "valid_from": "2024-01-01"}]


@pytest.mark.parametrize("code", [UPC, "0" + UPC, "00" + UPC])
def test_lookup_by_barcode_in_any_gtin_form_finds_the_pack(token_client, catalog, code):
    response = token_client.get("/api/v1/articles/lookup/", {"code": code})

    assert response.status_code == 200
    assert (response.json()["matched_by"], response.json()["pack_qty"], response.json()["article"]["sku"]) == (
        "barcode",
        "6.000",
        "A-1",
    )


@pytest.mark.parametrize(
    "code, status, error",
    [
        ("", 400, {"field": "code", "reason": "This field may not be blank.", "code": "blank"}),
        (
            "4006381333932",
            400,
            {
                "field": "code",
                "reason": "barcode '4006381333932' has check digit 2, expected 1 (EAN-13)",
                "code": "check_digit",
            },
        ),
        (
            "12345",
            400,
            {"field": "code", "reason": "barcode '12345' has 5 digits; expected 8, 12, 13 or 14", "code": "invalid"},
        ),
        ("NOPE", 404, {"field": "code", "reason": "no article with SKU 'NOPE'", "code": "not_found"}),
        (
            valid_ean13("590123412345"),
            404,
            {
                "field": "code",
                "reason": f"no article with SKU or barcode '{valid_ean13('590123412345')}'",
                "code": "not_found",
            },
        ),
    ],
)
def test_lookup_errors_name_the_field_and_reason(token_client, catalog, code, status, error):
    response = token_client.get("/api/v1/articles/lookup/", {"code": code})

    assert response.status_code == status
    assert response.json() == {"errors": [error]}


def test_stock_levels_are_filtered_paginated_with_a_fixed_number_of_queries(token_client, catalog):
    for i in range(30):
        make_article(sku=f"B-{i:02d}")
    stock_moves_post(
        moves=[
            MoveSpec(
                kind="receipt", idempotency_key=f"r{i}", quantity=Decimal(i + 1), sku=f"B-{i:02d}", location_code="S1"
            )
            for i in range(30)
        ]
        + [MoveSpec(kind="receipt", idempotency_key="k", quantity=Decimal(5), sku="B-00", location_code="K1")],
        origin=StockOrigin(kind="user", code="clerk"),
    )

    with CaptureQueriesContext(connection) as queries:
        response = token_client.get("/api/v1/stock-levels/", {"location": "S1", "limit": 25})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 30
    assert len(body["results"]) == 25
    assert body["results"][0] == {
        "sku": "B-00",
        "article_name": "B-00",
        "location": "S1",
        "on_hand": "1.000",
        "reorder_point": None,
        "updated_at": body["results"][0]["updated_at"],
    }
    # token lookup, its last-used stamp (at most once a minute), count, page
    assert len(queries) == 4, [q["sql"] for q in queries]


def test_stock_levels_by_article_barcode_across_locations(token_client, catalog):
    stock_moves_post(
        moves=[
            MoveSpec(kind="receipt", idempotency_key="a", quantity=Decimal(2), sku="A-1", location_code="S1"),
            MoveSpec(kind="receipt", idempotency_key="b", quantity=Decimal(3), sku="A-1", location_code="K1"),
        ],
        origin=StockOrigin(kind="user", code="clerk"),
    )

    response = token_client.get("/api/v1/stock-levels/", {"article": EAN})

    assert [(r["location"], r["on_hand"]) for r in response.json()["results"]] == [("K1", "3.000"), ("S1", "2.000")]


def test_posting_moves_updates_levels_and_replay_reports_duplicates(token_client, catalog):
    batch = {"moves": [sale("web-1-1", "-2"), sale("web-1-2", "-1", sku=None, barcode=UPC) | {"sku": None}]}
    batch["moves"][1].pop("sku")

    first = token_client.post("/api/v1/stock-moves/", batch, format="json")
    again = token_client.post("/api/v1/stock-moves/", batch, format="json")

    assert first.status_code == 200
    assert (first.json()["posted"], first.json()["duplicates"], first.json()["refused"]) == (2, 0, 0)
    assert [(r["status"], r["quantity"], r["balance_after"]) for r in first.json()["results"]] == [
        ("posted", "-2.000", "-2.000"),
        ("posted", "-6.000", "-8.000"),  # a 6-pack barcode
    ]
    assert again.status_code == 200
    assert (again.json()["posted"], again.json()["duplicates"]) == (0, 2)
    assert [r["move_id"] for r in again.json()["results"]] == [r["move_id"] for r in first.json()["results"]]
    assert StockLevel.objects.get(article=catalog, location__code="S1").on_hand == Decimal("-8")
    move = StockMove.objects.get(idempotency_key="web-1-1")
    assert (move.origin, move.origin_code) == ("user", "clerk")


@pytest.mark.parametrize(
    "move, field, reason",
    [
        ({"quantity": "abc"}, "moves[0].quantity",
         "'abc' is not a plain decimal number (digits, an optional sign and point; no exponent, spaces or "
         "underscores)"),
        ({"quantity": "1_000"}, "moves[0].quantity",
         "'1_000' is not a plain decimal number (digits, an optional sign and point; no exponent, spaces or "
         "underscores)"),
        ({"quantity": None}, "moves[0].quantity", "This field may not be null."),
        ({"kind": "teleport"}, "moves[0].kind", '"teleport" is not a valid choice.'),
        ({"idempotency_key": ""}, "moves[0].idempotency_key", "This field may not be blank."),
        ({"quantity": "2"}, "moves[0].quantity", "a sale takes stock: the quantity must be negative"),
        ({"quantity": "-1.0001"}, "moves[0].quantity", "Ensure that there are no more than 3 decimal places."),
        ({"location": "MOON"}, "moves[0].location", "unknown location code 'MOON'"),
        ({"sku": "NOPE"}, "moves[0].sku", "unknown sku 'NOPE'"),
        ({"kind": "count"}, "moves[0].counted", "a count needs the counted quantity"),
        ({"barcode": EAN}, "moves[0].sku", "give either sku or barcode"),
    ],
)
def test_bad_move_is_400_naming_field_and_reason_and_nothing_moves(token_client, catalog, move, field, reason):
    response = token_client.post("/api/v1/stock-moves/", {"moves": [sale("ok-1"), sale("bad", **move)]}, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert (errors[0]["field"].replace("moves[1]", "moves[0]"), errors[0]["reason"]) == (field, reason)
    assert errors[0]["field"].startswith("moves[1]")
    assert not StockMove.objects.exists()


def test_batch_shape_errors(token_client, catalog):
    empty = token_client.post("/api/v1/stock-moves/", {"moves": []}, format="json")
    missing = token_client.post("/api/v1/stock-moves/", {}, format="json")

    assert empty.json() == {"errors": [{"field": "moves", "reason": "This list may not be empty.", "code": "empty"}]}
    assert missing.json() == {"errors": [{"field": "moves", "reason": "This field is required.", "code": "required"}]}


def test_key_reused_with_other_content_is_409_and_nothing_moves(token_client, catalog):
    token_client.post("/api/v1/stock-moves/", {"moves": [sale("k1", "-2")]}, format="json")

    response = token_client.post("/api/v1/stock-moves/", {"moves": [sale("k2", "-1"), sale("k1", "-5")]}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "errors": [
            {
                "field": "moves[1].idempotency_key",
                "code": "conflict",
                "reason": "key 'k1' was posted before with different content",
            }
        ]
    }
    assert list(StockMove.objects.values_list("idempotency_key", flat=True)) == ["k1"]


def test_negative_stock_is_refused_and_partial_posts_the_rest(token_client, catalog):
    refused = token_client.post("/api/v1/stock-moves/", {"moves": [sale("n1", location="K1")]}, format="json")
    partial = token_client.post(
        "/api/v1/stock-moves/", {"moves": [sale("n1", location="K1"), sale("n2")], "partial": True}, format="json"
    )

    assert refused.status_code == 400
    assert refused.json()["errors"][0] == {
        "field": "moves[0].quantity",
        "code": "negative_stock",
        "reason": "would leave -1 on hand (now 0); this location refuses negative stock",
    }
    assert partial.status_code == 200
    assert [(r["status"], (r["problem"] or {}).get("code")) for r in partial.json()["results"]] == [
        ("refused", "negative_stock"),
        ("posted", None),
    ]
    assert list(StockMove.objects.values_list("idempotency_key", flat=True)) == ["n2"]


def test_session_auth_works_for_staff(client, staff_user, catalog):
    client.force_login(staff_user)

    response = client.get("/api/v1/articles/lookup/", {"code": "A-1"})

    assert response.status_code == 200


def test_schema_and_docs_are_served(client, staff_user):
    client.force_login(staff_user)
    schema = client.get("/api/schema/", {"format": "json"})
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/articles/lookup/", "/api/v1/stock-levels/", "/api/v1/stock-moves/"} <= set(paths)
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    # Served offline: the Swagger UI comes from our static files, not a CDN.
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs.content
    assert b"cdn.jsdelivr" not in docs.content
    assert ApiToken.objects.count() == 0
