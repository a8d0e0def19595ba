"""Smaller core services: barcode cells, manual adjustments, article lookup."""

from __future__ import annotations

from decimal import Decimal

import pytest

from posinv.exceptions import InvalidInput, LedgerRefused, NotFound
from posinv.models import StockLevel, StockMove
from posinv.selectors import article_find
from posinv.services.adjustments import stock_adjust
from posinv.services.articles import BarcodeSpec, barcodes_format, barcodes_parse
from tests.factories import make_barcode, make_location, valid_ean13

EAN = valid_ean13("400638133393")
UPC = "036000291452"


@pytest.mark.parametrize(
    "cell, expected",
    [
        (f"{EAN}", [BarcodeSpec(EAN, "0" + EAN, Decimal("1"))]),
        (f" {EAN} | {UPC}*6 ", [BarcodeSpec(EAN, "0" + EAN, Decimal("1")), BarcodeSpec(UPC, "00" + UPC, Decimal("6"))]),
        (f"{EAN};{UPC}x12", [BarcodeSpec(EAN, "0" + EAN, Decimal("1")), BarcodeSpec(UPC, "00" + UPC, Decimal("12"))]),
        (f"{EAN},{UPC}*2.5", [BarcodeSpec(EAN, "0" + EAN, Decimal("1")), BarcodeSpec(UPC, "00" + UPC, Decimal("2.5"))]),
        ("", []),
    ],
)
def test_barcode_cells_are_parsed(cell, expected):
    assert barcodes_parse(text=cell) == expected


@pytest.mark.parametrize(
    "cell, reason",
    [
        (f"{EAN}|0{EAN}", f"barcode 0{EAN} is listed twice"),
        (f"{UPC}*0", f"pack quantity '0' of {UPC} must be a positive number"),
        ("ABC123", "barcode 'ABC123' must contain digits only"),
        ("1234567", "barcode '1234567' has 7 digits; expected 8, 12, 13 or 14"),
    ],
)
def test_bad_barcode_cells_name_the_code_and_reason(cell, reason):
    with pytest.raises(InvalidInput) as refused:
        barcodes_parse(text=cell)
    assert (refused.value.problems[0].field, refused.value.problems[0].reason) == ("barcodes", reason)


@pytest.mark.django_db
def test_barcode_cell_round_trips_through_export_format(article):
    make_barcode(article=article, code=EAN)
    make_barcode(article=article, code=UPC, pack_qty=Decimal("6"))

    cell = barcodes_format(barcodes=article.barcodes.all())

    assert cell == f"{UPC}*6|{EAN}"
    assert {spec.gtin for spec in barcodes_parse(text=cell)} == {"0" + EAN, "00" + UPC}


@pytest.mark.django_db
def test_adjustment_posts_one_user_move_with_reason(article, store):
    result = stock_adjust(
        article_id=article.pk,
        location_id=store.pk,
        reason="found behind the shelf",
        username="clerk",
        idempotency_key="adj-1",
        quantity=Decimal("3"),
    )

    move = StockMove.objects.get()
    assert (result.status, result.balance_after) == ("posted", Decimal("3"))
    assert (move.kind, move.reason, move.origin, move.origin_code, move.reference) == (
        "adjustment",
        "found behind the shelf",
        "user",
        "clerk",
        "manual by clerk",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs, problems",
    [
        ({"reason": " ", "quantity": Decimal("1")}, [("reason", "say why stock is corrected")]),
        ({"reason": "x"}, [("quantity", "give either a quantity to add or a counted quantity")]),
        (
            {"reason": "x", "quantity": Decimal("1"), "counted": Decimal("2")},
            [("quantity", "give either a quantity to add or a counted quantity")],
        ),
    ],
)
def test_adjustment_needs_a_reason_and_exactly_one_quantity(article, store, kwargs, problems):
    with pytest.raises(InvalidInput) as refused:
        stock_adjust(article_id=article.pk, location_id=store.pk, username="clerk", idempotency_key="a", **kwargs)
    assert [(p.field, p.reason) for p in refused.value.problems] == problems
    assert not StockMove.objects.exists()


@pytest.mark.django_db
def test_adjustment_below_zero_at_a_refusing_location_is_refused(article):
    kiosk = make_location(code="K1", refuse_negative=True)

    with pytest.raises(LedgerRefused):
        stock_adjust(
            article_id=article.pk,
            location_id=kiosk.pk,
            reason="theft",
            username="clerk",
            idempotency_key="a",
            quantity=Decimal("-1"),
        )

    assert not StockMove.objects.exists()
    assert not StockLevel.objects.exists()


@pytest.mark.django_db
def test_article_find_prefers_the_sku_and_knows_every_gtin_form(article):
    make_barcode(article=article, code=UPC, pack_qty=Decimal("6"))

    by_sku = article_find(code="A-1")
    by_upc = article_find(code=UPC)
    by_gtin14 = article_find(code="00" + UPC)

    assert (by_sku.matched_by, by_sku.pack_qty) == ("sku", Decimal("1"))
    assert (by_upc.matched_by, by_upc.pack_qty, by_upc.article) == ("barcode", Decimal("6"), article)
    assert by_gtin14.barcode == by_upc.barcode
    with pytest.raises(NotFound):
        article_find(code=EAN)
