"""A cabinet tray below its threshold feeds the same purchasing list: its
suggestion becomes a purchase-order line for the cabinet's location, and
receiving it puts the goods into the cabinet location's stock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from backoffice.services.purchasing import (
    ReceiveSpec,
    purchase_order_receive,
    purchase_order_send,
    purchase_orders_draft,
)
from cabinets.models import WeightReading
from cabinets.services.provisioning import cabinet_create, trays_import
from cabinets.services.readings import ReadingIn, readings_apply
from posinv.models import ReorderSuggestion, StockLevel
from tests.backoffice.factories import make_supplier, make_supplier_article
from tests.factories import make_article, make_location


def test_a_tray_below_its_threshold_ends_up_on_a_purchase_order(db):
    location = make_location(code="CAB1", kind="cabinet")
    nut = make_article(sku="NUT-M8", unit_weight_g=Decimal("5.000"))
    make_supplier_article(supplier=make_supplier(code="HW"), article=nut, pack_size="25", min_order_qty="50")
    cabinet, _ = cabinet_create(code="CAB1", location_code="CAB1")
    trays_import(cabinet=cabinet, rows=[{"tray_id": "T-0001", "sku": "NUT-M8", "tare_g": "400", "threshold": "50"}])

    # 20 nuts on the tray: 400 g tare + 20 x 5 g
    readings_apply(
        cabinet=cabinet,
        readings=[ReadingIn(tray_id="T-0001", weight_g=Decimal("500"), read_at=datetime(2026, 5, 4, 9, tzinfo=UTC))],
        via=WeightReading.Via.PUSH,
    )
    suggestion = ReorderSuggestion.objects.get(state="open")
    assert (suggestion.source, suggestion.location, suggestion.suggested_quantity) == (
        "tray",
        location,
        Decimal("80.000"),
    )

    order = purchase_orders_draft().orders[0]
    assert (order.location, list(order.lines.values_list("article__sku", "quantity_ordered"))) == (
        location,
        [("NUT-M8", Decimal("100.000"))],
    )
    purchase_order_send(order_id=order.pk)
    purchase_order_receive(
        order_id=order.pk, delivery_note="DN-9", lines=[ReceiveSpec(line_no=1, quantity=Decimal("100"))]
    )
    assert StockLevel.objects.get(article=nut, location=location).on_hand == Decimal("120.000")
