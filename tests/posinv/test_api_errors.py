"""Error answers found by the API fuzzing (tests/reliability/test_fuzz_api.py):
a URL under /api/ that no operation answers is JSON, and a bad `limit` or
`offset` of a list is a 400 naming it instead of the first page or a 500."""
from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_issue
from tests.factories import make_article, make_location

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(staff_user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind='user', subject='clerk', user=staff_user)}")
    return client


@pytest.fixture
def levels(db):
    """Stock of three articles A-1..A-3 at S1, received through the ledger."""
    make_location(code="S1")
    for n in (1, 2, 3):
        make_article(sku=f"A-{n}")
    stock_moves_post(
        moves=[MoveSpec(kind="receipt", idempotency_key=f"r{n}", quantity=Decimal(n), sku=f"A-{n}", location_code="S1")
               for n in (1, 2, 3)],
        origin=StockOrigin(kind="user", code="clerk"),
    )


@pytest.mark.parametrize("path", ["/api/v1/scan/a/b/", "/api/v1/carts/%C3%BE/webhook/", "/api/v1/no-such-thing/"])
def test_an_api_url_no_operation_answers_is_a_json_404(staff, path):
    response = staff.post(path, {}, format="json") if "webhook" in path else staff.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": [{"reason": "No API operation answers at this path.", "code": "not_found"}]}


def test_outside_the_api_an_unknown_url_is_still_django_s_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_limit_and_offset_page_through_a_list(staff, levels):
    response = staff.get("/api/v1/stock-levels/", {"location": "S1", "limit": "2", "offset": "1"})

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert [row["sku"] for row in response.json()["results"]] == ["A-2", "A-3"]


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ("limit=10000000000000000000", "limit", "must be between 1 and 1000, got 10000000000000000000"),
        ("limit=1001", "limit", "must be between 1 and 1000, got 1001"),
        ("limit=0", "limit", "must be between 1 and 1000, got 0"),
        ("limit=-5", "limit", "must be between 1 and 1000, got -5"),
        ("offset=-1", "offset", "must be 0 or more, got -1"),
        ("limit=" + "9" * 5000, "limit", f"must be a whole number, got {'9' * 20!r}"),
        ("limit=null", "limit", "must be a whole number, got 'null'"),
        ("offset=0.5", "offset", "must be a whole number, got '0.5'"),
        ("offset=1&offset=2", "offset", "give offset once, not 2 times"),
    ],
)
def test_a_bad_limit_or_offset_is_a_400_naming_it(staff, levels, query, field, reason):
    # limit=10**19 used to reach PostgreSQL as a LIMIT past bigint: a 500
    response = staff.get(f"/api/v1/stock-levels/?location=S1&{query}")

    assert response.status_code == 400
    assert response.json() == {"errors": [{"field": field, "reason": reason, "code": "invalid"}]}
