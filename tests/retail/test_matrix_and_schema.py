"""The central stock matrix page and the OpenAPI documentation of scan and sale."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from posinv.models import StockLevel
from tests.factories import make_article, make_location
from tests.retail.factories import stock_in

pytestmark = pytest.mark.django_db

URL = "/admin/retail/stockmatrix/"


@pytest.fixture
def chain(db):
    s1 = make_location(code="S1", kind="store")
    s2 = make_location(code="S2", kind="store")
    w1 = make_location(code="W1", kind="warehouse")
    apple = make_article(sku="APPLE", name="Apple", category="Fruit")
    pear = make_article(sku="PEAR", name="Pear", category="Fruit")
    soap = make_article(sku="SOAP", name="Soap", category="Household")
    stock_in(article=apple, location=s1, quantity="3")
    stock_in(article=apple, location=w1, quantity="100")
    stock_in(article=pear, location=s2, quantity="8")
    stock_in(article=soap, location=s1, quantity="40")
    StockLevel.objects.filter(article=apple, location=s1).update(reorder_point=Decimal(5))
    StockLevel.objects.filter(article=pear, location=s2).update(reorder_point=Decimal(5))
    return s1, s2, w1


def rows(html: str) -> list[list[str]]:
    body = html.split('<table id="stock-matrix">', 1)[1].split("</table>", 1)[0]
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        cells = [
            re.sub(r"<[^>]+>", "", cell).split()[0] if re.sub(r"<[^>]+>", "", cell).split() else ""
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        out.append(cells)
    return out


def test_matrix_shows_every_article_in_every_location(admin_client, chain):
    html = admin_client.get(URL).content.decode()

    assert rows(html) == [
        ["APPLE", "Apple", "Fruit", "3", "&ndash;", "100", "103"],
        ["PEAR", "Pear", "Fruit", "&ndash;", "8", "&ndash;", "8"],
        ["SOAP", "Soap", "Household", "40", "&ndash;", "&ndash;", "40"],
    ]
    assert "3 articles &times; 3 locations" in html


def test_matrix_filters_by_category_location_kind_and_below_reorder_point(admin_client, chain):
    assert [r[0] for r in rows(admin_client.get(URL, {"category": "Household"}).content.decode())] == ["SOAP"]
    stores_only = rows(admin_client.get(URL, {"kind": "store"}).content.decode())
    assert stores_only[0] == ["APPLE", "Apple", "Fruit", "3", "&ndash;", "3"]
    below = admin_client.get(URL, {"below": "1"}).content.decode()
    assert [r[0] for r in rows(below)] == ["APPLE"]
    assert 'class="cell below"' in below


def test_matrix_is_aggregated_in_a_few_queries_whatever_its_size(admin_client, chain, django_assert_max_num_queries):
    for n in range(40):
        article = make_article(sku=f"X-{n:03d}", category="Bulk")
        for location in chain:
            stock_in(article=article, location=location, quantity="1")

    # Session, user, then categories, locations, count, articles, levels.
    with django_assert_max_num_queries(9):
        response = admin_client.get(URL)

    assert response.status_code == 200
    assert len(rows(response.content.decode())) == 43


def test_schema_documents_scan_and_sale_with_examples(admin_client):
    response = admin_client.get("/api/schema/", {"format": "json"})

    schema = response.json()
    scan = schema["paths"]["/api/v1/scan/{code}/"]["get"]
    sale = schema["paths"]["/api/v1/sales/"]["post"]
    assert set(scan["responses"]) >= {"200", "400", "404"}
    assert set(scan["responses"]["200"]["content"]["application/json"]["examples"]) == {"EAN-13", "ScaleLabel,1250G"}
    assert (
        scan["responses"]["400"]["content"]["application/json"]["examples"]["WrongCheckDigit"]["value"]["errors"][0][
            "code"
        ]
        == "check_digit"
    )
    assert [p["name"] for p in sale["parameters"]] == ["Idempotency-Key"]
    assert sale["parameters"][0]["required"] is True
    request_examples = sale["requestBody"]["content"]["application/json"]["examples"]
    assert request_examples["ThreeLines,CardPayment"]["value"]["lines"][0] == {
        "code": "4006381333931",
        "quantity": "2",
        "price": "1.99",
    }
    assert set(sale["responses"]) >= {"201", "400", "409"}
    assert set(sale["responses"]["201"]["headers"]) == {"Idempotent-Replayed"}
    assert "Recorded" in sale["responses"]["201"]["content"]["application/json"]["examples"]


def test_matrix_needs_the_view_permission(client, django_user_model, chain):
    clerk = django_user_model.objects.create_user(username="clerk2", password="pw", is_staff=True)
    client.force_login(clerk)

    assert client.get(URL).status_code == 403


def test_matrix_api_gives_the_same_cells_in_a_few_queries(staff_client, chain, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        response = staff_client.get("/api/v1/stock-matrix/", {"kind": "store", "below": "true"})

    assert response.status_code == 200
    assert response.json() == {
        "locations": [{"code": "S1", "name": "S1", "kind": "store"}, {"code": "S2", "name": "S2", "kind": "store"}],
        "rows": [
            {
                "sku": "APPLE",
                "name": "Apple",
                "category": "Fruit",
                "total": "3.000",
                "cells": [
                    {"on_hand": "3.000", "reorder_point": "5.000", "below": True},
                    {"on_hand": None, "reorder_point": None, "below": False},
                ],
            }
        ],
        "total_articles": 1,
        "page": 1,
        "pages": 1,
    }


def test_matrix_api_refuses_an_unknown_location_kind(staff_client, chain):
    response = staff_client.get("/api/v1/stock-matrix/", {"kind": "moon"})

    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "kind")
