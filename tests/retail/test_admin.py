"""Admin pages of the retail app show state at a glance without N+1 queries."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command

from posinv.models import StockLevel
from posinv.services.ledger import StockOrigin
from retail.models import LiveSale, RfidRead, ScaleLayout, TransferOrder
from retail.services.codes import codes_resolve
from retail.services.rfid import rfid_read_post
from retail.services.transfers import TransferLineSpec, transfer_create
from tests.factories import make_location
from tests.retail.conftest import EAN13, UPCA
from tests.retail.factories import stock_in, with_check

pytestmark = pytest.mark.django_db


def test_live_sales_list_shows_flags_and_links_receipts_in_constant_queries(
    admin_client, till, pen, soda, shop, django_assert_max_num_queries
):
    stock_in(article=pen, location=shop, quantity="100")
    for n in range(6):
        till.post(
            "/api/v1/sales/",
            {
                "lines": [
                    {"code": EAN13, "quantity": "1", "price": "1.49" if n % 2 else "1.99"},
                    {"code": UPCA, "quantity": "1", "price": "0.89"},
                ]
            },
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k-{n}",
        )

    with django_assert_max_num_queries(12):
        page = admin_client.get("/admin/retail/livesale/")
    flagged = admin_client.get("/admin/retail/livesale/", {"flagged__exact": "1"})

    html = page.content.decode()
    assert page.status_code == 200
    assert len(re.findall(r'href="/admin/pos/receipt/\d+/change/"', html)) == 6
    assert flagged.context["cl"].result_count == 3 == LiveSale.objects.filter(flagged=True).count()
    assert html.count("line 1: 1.49 vs 1.99") == 3


def test_transfer_list_annotates_quantities_and_the_add_form_numbers_new_orders(
    admin_client, shop, pen, django_assert_max_num_queries
):
    make_location(code="S2")
    for _ in range(5):
        transfer_create(
            source_code="S1",
            destination_code="S2",
            lines=[
                TransferLineSpec(sku="PEN-01", quantity=Decimal("2")),
                TransferLineSpec(sku="PEN-01", quantity=Decimal("3")),
            ],
        )

    with django_assert_max_num_queries(12):
        page = admin_client.get("/admin/retail/transferorder/")
    assert page.status_code == 200
    assert page.context["cl"].result_list[0]._quantity == Decimal("5")

    response = admin_client.post(
        "/admin/retail/transferorder/add/",
        {
            "source": shop.pk,
            "destination": make_location(code="S3").pk,
            "note": "by hand",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-0-line_no": "1",
            "lines-0-article": pen.pk,
            "lines-0-quantity": "4",
            "receipts-TOTAL_FORMS": "0",
            "receipts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    order = TransferOrder.objects.get(note="by hand")
    assert (order.number, order.status, order.created_by) == (f"TO-{order.pk:06d}", "draft", "admin")
    assert list(order.lines.values_list("quantity", flat=True)) == [Decimal("4")]


def test_same_source_and_destination_is_refused_in_the_admin_form(admin_client, shop):
    response = admin_client.post(
        "/admin/retail/transferorder/add/",
        {
            "source": shop.pk,
            "destination": shop.pk,
            "note": "",
            "lines-TOTAL_FORMS": "0",
            "lines-INITIAL_FORMS": "0",
            "receipts-TOTAL_FORMS": "0",
            "receipts-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "Constraint “transfer_distinct_locations” is violated." in response.content.decode()
    assert TransferOrder.objects.count() == 0


def test_rfid_and_scale_layout_pages(admin_client, shop, pen):
    rfid_read_post(
        location_code="S1", epcs=["3114257BF7194E4000001A85"], read_id="g1", origin=StockOrigin(kind="user", code="t")
    )
    ScaleLayout.objects.create(prefix="22", content="price", item_digits=4, has_verifier=True)

    reads = admin_client.get("/admin/retail/rfidread/")
    layouts = admin_client.get("/admin/retail/scalelayout/")

    assert reads.status_code == 200 and "g1" in reads.content.decode()
    assert "22 IIII V PPPPP C" in layouts.content.decode()
    assert RfidRead.objects.get().unknown_count == 1


def test_bad_scale_layouts_are_refused_with_the_reason(admin_client):
    def add(**fields):
        return admin_client.post("/admin/retail/scalelayout/add/", {"content": "weight", "active": "on", **fields})

    short_value = add(prefix="23", item_digits="6", has_verifier="on")
    wrong_prefix = add(prefix="31", item_digits="5")

    assert "with a verifier digit the value needs 4 or 5 digits, not 3" in short_value.content.decode()
    assert "a prefix from 20 to 29" in wrong_prefix.content.decode()
    assert ScaleLayout.objects.count() == 0


def test_demo_loader_is_idempotent_and_gives_a_scannable_scale_label(db, settings):
    settings.POSINV_DEMO_LOADERS = ["pos.demo.pos_demo_load", "retail.demo.retail_demo_load"]
    call_command("demo_data", stdout=io.StringIO())
    call_command("demo_data", stdout=io.StringIO())

    [label] = codes_resolve(codes=[with_check("210000101500")])  # 1500 g of item 00001

    assert (label.sku, label.kind, label.weight_g) == ("NAIL-LOOSE", "scale-weight", 1500)
    assert list(ScaleLayout.objects.values_list("prefix", flat=True)) == ["21", "22"]
    assert list(TransferOrder.objects.values_list("source__code", "destination__code", "status")) == [
        ("W1", "S1", "draft")
    ]


def test_detail_pages_render_read_only_once_goods_moved(admin_client, till, pen, shop):
    from retail.services.transfers import transfer_ship

    stock_in(article=pen, location=shop, quantity="10")
    make_location(code="S2")
    order = transfer_create(
        source_code="S1", destination_code="S2", lines=[TransferLineSpec(sku="PEN-01", quantity=Decimal("2"))]
    )
    transfer_ship(number=order.number)
    till.post(
        "/api/v1/sales/",
        {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="d-1",
    )
    read, _ = rfid_read_post(
        location_code="S1", epcs=["3114257BF7194E4000001A85"], read_id="g2", origin=StockOrigin(kind="user", code="t")
    )

    transfer_page = admin_client.get(f"/admin/retail/transferorder/{order.pk}/change/")
    sale_page = admin_client.get(f"/admin/retail/livesale/{LiveSale.objects.get().pk}/change/")
    read_page = admin_client.get(f"/admin/retail/rfidread/{read.pk}/change/")

    assert (transfer_page.status_code, sale_page.status_code, read_page.status_code) == (200, 200, 200)
    html = transfer_page.content.decode()
    assert 'name="lines-0-quantity"' not in html  # lines are frozen once shipped
    assert "Shipped" in html
    assert "d-1" in sale_page.content.decode()


def test_staff_post_an_rfid_read_from_the_admin(admin_client, pen, shop):
    from retail.services.epc import sgtin96_encode

    epcs = "\n".join(sgtin96_encode(gtin="0" + EAN13, serial=n, partition=5) for n in (1, 2, 3))

    response = admin_client.post(
        "/admin/retail/rfidread/add/",
        {"location": shop.pk, "read_id": "hand-1", "reader": "HH-7", "epcs": epcs + "\nE2801160600002082B3A1C5F\n"},
        follow=True,
    )
    again = admin_client.post(
        "/admin/retail/rfidread/add/", {"location": shop.pk, "read_id": "hand-1", "epcs": epcs}, follow=True
    )
    empty = admin_client.post("/admin/retail/rfidread/add/", {"location": shop.pk, "epcs": "  \n "})

    assert "RFID read hand-1: 3 tag(s), 1 article(s) counted, 1 not understood" in response.content.decode()
    assert "(sent before: nothing moved)" in again.content.decode()
    assert "This field is required." in empty.content.decode()
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("3")
    assert RfidRead.objects.get().reader == "HH-7"
