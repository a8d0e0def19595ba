"""GET /api/v1/scan/{code}/: every code family with real check digits."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from posinv.models import Price
from posinv.services.tokens import token_issue
from retail.models import ScaleLayout
from retail.services.transfers import TransferLineSpec, transfer_create
from tests.factories import make_location
from tests.retail.conftest import EAN8, EAN13, PACK_GTIN14, UPCA
from tests.retail.factories import make_priced_article, stock_in, with_check

pytestmark = pytest.mark.django_db


def scan(client, code):
    return client.get(f"/api/v1/scan/{code}/")


def test_ean13_scan_answers_article_price_and_stock_at_the_registers_location(till, pen, shop):
    stock_in(article=pen, location=shop, quantity="42")
    stock_in(article=pen, location=make_location(code="W1"), quantity="500")

    response = scan(till, EAN13)

    assert response.status_code == 200
    assert response.json() == {
        "code": EAN13,
        "kind": "EAN-13",
        "gtin": "0" + EAN13,
        "article": {"sku": "PEN-01", "name": "PEN-01", "unit": "pcs", "category": ""},
        "quantity": "1.000",
        "weight_g": None,
        "unit_price": "1.99",
        "amount": "1.99",
        "currency": "EUR",
        "location": "S1",
        "on_hand": "42.000",
        "available": "42.000",
    }


def test_upc_a_finds_the_article_registered_under_its_ean13_form(till, group):
    make_priced_article(sku="SODA-1", price="0.89", group=group, barcode="0" + UPCA)

    response = scan(till, UPCA)

    assert response.status_code == 200
    assert (response.json()["kind"], response.json()["gtin"], response.json()["article"]["sku"]) == (
        "UPC-A",
        "00036000291452",
        "SODA-1",
    )


def test_ean8_and_gtin14_forms_are_found(till, group):
    case_code = with_check("1087123456789")
    make_priced_article(sku="GUM", price="0.50", group=group, barcode=EAN8)
    make_priced_article(sku="CASE", price="30.00", group=group, barcode=case_code)

    gum = scan(till, EAN8).json()
    case = scan(till, case_code).json()

    assert (gum["kind"], gum["gtin"], gum["article"]["sku"]) == ("EAN-8", "00000096385074", "GUM")
    assert (case["kind"], case["gtin"], case["article"]["sku"]) == ("GTIN-14", case_code, "CASE")


def test_pack_barcode_stands_for_the_units_in_the_pack(till, pen, shop):
    stock_in(article=pen, location=shop, quantity="100")

    body = scan(till, PACK_GTIN14).json()

    assert (body["kind"], body["quantity"], body["unit_price"], body["amount"]) == (
        "GTIN-14 pack",
        "12.000",
        "1.99",
        "23.88",
    )


def test_price_is_the_newest_valid_today_in_the_registers_group(till, pen, group):
    Price.objects.create(
        article=pen, group=group, amount=Decimal("1.49"), valid_from=timezone.localdate() - timedelta(days=9)
    )
    Price.objects.create(
        article=pen, group=group, amount=Decimal("2.49"), valid_from=timezone.localdate() + timedelta(days=1)
    )

    assert scan(till, EAN13).json()["unit_price"] == "1.99"


def test_available_is_on_hand_less_draft_transfers_out(till, pen, shop):
    stock_in(article=pen, location=shop, quantity="10")
    make_location(code="S2")
    transfer_create(
        source_code="S1", destination_code="S2", lines=[TransferLineSpec(sku="PEN-01", quantity=Decimal("3"))]
    )

    body = scan(till, EAN13).json()

    assert (body["on_hand"], body["available"]) == ("10.000", "7.000")


@pytest.fixture
def cheese(group):
    # Registered scale barcode: prefix 21, item 01234, value zeroed.
    return make_priced_article(sku="GOUDA", price="12.80", group=group, barcode=with_check("210123400000"), unit="kg")


def test_weight_label_gives_the_article_and_its_weight(till, cheese, shop):
    ScaleLayout.objects.create(prefix="21", content="weight", item_digits=5)
    stock_in(article=cheese, location=shop, quantity="8.415")
    label = with_check("210123401250")  # 1250 g

    body = scan(till, label).json()

    assert (body["kind"], body["article"]["sku"], body["weight_g"], body["quantity"], body["amount"]) == (
        "scale-weight",
        "GOUDA",
        1250,
        "1.250",
        "16.00",
    )


def test_price_label_gives_the_article_and_the_printed_price(till, cheese):
    ScaleLayout.objects.create(prefix="21", content="price", item_digits=5)
    label = with_check("210123406400")  # 64.00

    body = scan(till, label).json()

    assert (body["kind"], body["amount"], body["quantity"], body["weight_g"]) == ("scale-price", "64.00", "5.000", None)


def test_price_label_with_verifier_digit_is_checked(till, group):
    ScaleLayout.objects.create(prefix="22", content="price", item_digits=4, has_verifier=True)
    make_priced_article(sku="HAM", price="10.00", group=group, barcode=with_check("220123000000"))
    good = with_check("2201236" + "14685")  # item 0123, verifier 6 for 14685
    bad = with_check("2201237" + "14685")

    ok = scan(till, good)
    refused = scan(till, bad)

    assert (ok.status_code, ok.json()["amount"], ok.json()["article"]["sku"]) == (200, "146.85", "HAM")
    assert refused.status_code == 400
    assert refused.json() == {
        "errors": [
            {
                "field": "code",
                "code": "check_digit",
                "reason": f"scale label '{bad}' has price verifier digit 7, expected 6 (layout 22 IIII V PPPPP C)",
            }
        ]
    }


def test_wrong_check_digit_is_a_400_that_says_so(till, pen):
    response = scan(till, "4006381333932")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "field": "code",
                "code": "check_digit",
                "reason": "barcode '4006381333932' has check digit 2, expected 1 (EAN-13)",
            }
        ]
    }


def test_unknown_code_is_a_404_echoing_it(till, pen):
    response = scan(till, EAN8)

    assert response.status_code == 404
    assert response.json() == {
        "errors": [{"field": "code", "code": "not_found", "reason": f"no article with barcode '{EAN8}'"}]
    }


def test_scale_label_of_an_unregistered_item_is_a_404_naming_the_barcode_to_register(till):
    ScaleLayout.objects.create(prefix="21", content="weight", item_digits=5)
    label = with_check("219999901250")

    response = scan(till, label)

    assert response.status_code == 404
    assert response.json()["errors"][0]["reason"] == (
        f"no article with scale item 99999 (prefix 21) for label '{label}'; "
        f"register the article's scale barcode {with_check('219999900000')}"
    )


def test_letters_are_a_400(till):
    response = scan(till, "ABC123")

    assert (response.status_code, response.json()["errors"][0]["reason"]) == (
        400,
        "barcode 'ABC123' must contain digits only",
    )


def test_scan_needs_a_register_token(pen, db):
    cabinet = APIClient()
    cabinet.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind='cabinet', subject='C1')}")

    assert cabinet.get(f"/api/v1/scan/{EAN13}/").status_code == 403
    assert APIClient().get(f"/api/v1/scan/{EAN13}/").status_code == 401


def test_scan_answers_in_four_queries(till, pen, django_assert_num_queries):
    scan(till, EAN13)  # the token's first use is stamped once a minute, not per scan
    # The token with its register, the code with its article and price, the stock level, draft transfers.
    with django_assert_num_queries(4):
        assert scan(till, EAN13).status_code == 200


def test_a_deactivated_register_is_refused(till, pen):
    type(till.register).objects.filter(pk=till.register.pk).update(active=False)

    response = scan(till, EAN13)

    assert (response.status_code, response.json()) == (
        403,
        {"errors": [{"reason": "register 'R1' is not active", "code": "permission_denied"}]},
    )
