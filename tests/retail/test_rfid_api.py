"""POST /api/v1/rfid/reads/: SGTIN-96 EPCs decoded and posted as counts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from posinv.models import StockLevel, StockMove
from retail.models import RfidRead
from retail.services.epc import sgtin96_encode
from tests.factories import make_location
from tests.retail.conftest import EAN13, PACK_GTIN14
from tests.retail.factories import stock_in, with_check

pytestmark = pytest.mark.django_db

PEN_GTIN = "0" + EAN13


def epc(gtin: str, serial: int, partition: int = 5) -> str:
    return sgtin96_encode(gtin=gtin, serial=serial, partition=partition)


def test_read_posts_a_count_of_the_distinct_tags_per_article(till, pen, soda, shop):
    stock_in(article=pen, location=shop, quantity="40")
    epcs = [epc(PEN_GTIN, 1), epc(PEN_GTIN, 2), epc(PEN_GTIN, 2), epc(PACK_GTIN14, 7, partition=5)]

    response = till.post("/api/v1/rfid/reads/", {"read_id": "gate-1", "epcs": epcs}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["epc_count"], body["decoded_count"], body["unknown_count"], body["articles_counted"]) == (4, 3, 0, 1)
    # Two single pens plus one pack of 12: 14 counted, 26 fewer than booked.
    assert body["result"]["articles"] == [
        {"sku": "PEN-01", "gtins": [PEN_GTIN, PACK_GTIN14], "counted": "14.000", "difference": "-26.000"}
    ]
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("14")
    move = StockMove.objects.get(kind="count")
    assert (move.counted, move.quantity, move.origin, move.origin_code) == (
        Decimal("14"),
        Decimal("-26"),
        "register",
        "R1",
    )


def test_unknown_schemes_and_unknown_gtins_are_reported_and_change_nothing(till, pen, shop):
    stock_in(article=pen, location=shop, quantity="3")
    stranger = "0" + with_check("401234567890")
    epcs = ["3114257BF7194E4000001A85", "NOT-HEX", epc(stranger, 5)]

    response = till.post("/api/v1/rfid/reads/", {"read_id": "gate-2", "epcs": epcs}, format="json")

    assert response.status_code == 201
    assert response.json()["result"] == {
        "articles": [],
        "unknown": [
            {
                "index": 0,
                "epc": "3114257BF7194E4000001A85",
                "code": "unknown_scheme",
                "reason": "header 0x31 is scheme SSCC-96; only SGTIN-96 (0x30) is decoded",
            },
            {"index": 1, "epc": "NOT-HEX", "code": "invalid", "reason": "EPC 'NOT-HEX' is not hexadecimal"},
            {"gtin": stranger, "tags": 1, "code": "unknown_gtin", "reason": f"no article with GTIN {stranger}"},
        ],
    }
    assert StockMove.objects.filter(kind="count").count() == 0
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("3")


def test_the_same_read_again_returns_the_first_and_moves_nothing(till, pen, shop):
    body = {"read_id": "gate-3", "epcs": [epc(PEN_GTIN, 1)]}
    first = till.post("/api/v1/rfid/reads/", body, format="json")

    again = till.post("/api/v1/rfid/reads/", body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert (RfidRead.objects.count(), StockMove.objects.filter(kind="count").count()) == (1, 1)


def test_staff_reads_at_a_named_location_and_must_name_it(staff_client, pen):
    make_location(code="W1", kind="warehouse")

    missing = staff_client.post("/api/v1/rfid/reads/", {"epcs": [epc(PEN_GTIN, 1)]}, format="json")
    unknown = staff_client.post("/api/v1/rfid/reads/", {"epcs": [epc(PEN_GTIN, 1)], "location": "NOPE"}, format="json")
    ok = staff_client.post("/api/v1/rfid/reads/", {"epcs": [epc(PEN_GTIN, 1)], "location": "W1"}, format="json")

    assert (missing.status_code, missing.json()["errors"]) == (
        400,
        [{"field": "location", "code": "required", "reason": "required for a staff user"}],
    )
    assert (unknown.status_code, unknown.json()["errors"][0]["reason"]) == (404, "unknown location 'NOPE'")
    assert ok.status_code == 201
    assert StockMove.objects.get(kind="count").origin == "user"


def test_an_empty_read_is_a_400(till):
    response = till.post("/api/v1/rfid/reads/", {"epcs": []}, format="json")

    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "epcs")
    assert RfidRead.objects.count() == 0
