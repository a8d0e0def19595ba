"""The till API and the bound on quantities and amounts (posinv/bounds.py,
issue #16): a figure beyond it is a 400 naming the line's field, a sale or
return that would take a level beyond it is refused whole (on PostgreSQL the
one-statement write leaves it to the ledger, which says why), and nothing is
written either way."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pos.models import Receipt
from posinv.models import StockLevel, StockMove
from tests.retail.conftest import EAN13
from tests.retail.factories import stock_in

pytestmark = pytest.mark.django_db


def sell(client, lines, key="till-1-000001"):
    return client.post("/api/v1/sales/", {"lines": lines}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def sales_written() -> tuple[int, int]:
    return Receipt.objects.count(), StockMove.objects.filter(kind__in=["sale", "return"]).count()


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ({"code": EAN13, "quantity": "3000000000", "price": "1.99"}, "lines[0].quantity", "quantity bound"),
        ({"code": EAN13, "quantity": "-99999999999", "price": "1.99"}, "lines[0].quantity", "quantity bound"),
        ({"code": EAN13, "quantity": "1", "price": "1000000000.00"}, "lines[0].price", "amount bound"),
        ({"code": EAN13, "quantity": "1", "price": "1", "discount": "-1000000000"}, "lines[0].discount",
         "amount bound"),
    ],
)
def test_a_figure_beyond_the_bound_is_a_400_naming_the_field(till, pen, shop, line, field, words):
    response = sell(till, [line])

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert words in errors[0]["reason"]
    assert sales_written() == (0, 0)


def test_a_sale_whose_total_is_beyond_the_amount_bound_is_refused(till, pen, shop):
    stock_in(article=pen, location=shop, quantity="999999999")

    response = sell(till, [{"code": EAN13, "quantity": "999999999", "price": "999999999.99"}])

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("total", "out_of_bounds")
    assert "amount bound" in error["reason"]
    assert sales_written() == (0, 0)


def test_a_return_that_would_take_a_level_beyond_the_bound_is_refused_whole(till, pen, shop):
    stock_in(article=pen, location=shop, quantity="999999990")

    response = sell(till, [{"code": EAN13, "quantity": "-20", "price": "1.99"}])

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("lines[0].quantity", "out_of_bounds")
    assert "would take on hand to 1000000010" in error["reason"]
    assert sales_written() == (0, 0)
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("999999990")

    # Within the bound the same till goes on selling.
    assert sell(till, [{"code": EAN13, "quantity": "-9", "price": "1.99"}], key="till-1-000002").status_code == 201
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("999999999")
