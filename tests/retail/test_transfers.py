"""Transfer orders: draft -> shipped (stock leaves) -> received (stock
arrives, partial receipts allowed), each step one ledger batch; API and admin."""

from __future__ import annotations

from decimal import Decimal

import pytest

from posinv.models import Location, StockLevel, StockMove
from retail.models import TransferOrder
from tests.factories import make_article, make_location
from tests.retail.factories import stock_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def stores(shop):
    source = shop
    destination = make_location(code="S2", name="Harbour")
    apple = make_article(sku="APPLE")
    pear = make_article(sku="PEAR")
    stock_in(article=apple, location=source, quantity="30")
    stock_in(article=pear, location=source, quantity="10")
    return source, destination, apple, pear


def level(sku: str, code: str) -> Decimal:
    row = StockLevel.objects.filter(article__sku=sku, location__code=code).first()
    return row.on_hand if row else Decimal(0)


def create(client, lines=None):
    return client.post(
        "/api/v1/transfers/",
        {
            "source": "S1",
            "destination": "S2",
            "note": "restock",
            "lines": lines or [{"sku": "APPLE", "quantity": "12"}, {"sku": "PEAR", "quantity": "4"}],
        },
        format="json",
    )


def test_transfer_walks_draft_shipped_partial_received_moving_stock_at_each_step(staff_client, stores):
    created = create(staff_client)
    number = created.json()["number"]
    assert (created.status_code, created.json()["status"], number) == (
        201,
        "draft",
        "TO-" + f"{TransferOrder.objects.get().pk:06d}",
    )
    assert (level("APPLE", "S1"), level("APPLE", "S2")) == (Decimal(30), Decimal(0))

    shipped = staff_client.post(f"/api/v1/transfers/{number}/ship/")
    assert (shipped.status_code, shipped.json()["status"]) == (200, "shipped")
    assert (level("APPLE", "S1"), level("PEAR", "S1"), level("APPLE", "S2")) == (Decimal(18), Decimal(6), Decimal(0))
    assert StockMove.objects.filter(kind="transfer").count() == 2

    partial = staff_client.post(
        f"/api/v1/transfers/{number}/receive/",
        {"key": "dock-1", "lines": [{"line_no": 1, "quantity": "5"}]},
        format="json",
    )
    assert (partial.status_code, partial.json()["status"]) == (200, "partial")
    assert [(line["sku"], line["received_qty"]) for line in partial.json()["lines"]] == [
        ("APPLE", "5.000"),
        ("PEAR", "0.000"),
    ]
    assert (level("APPLE", "S2"), level("PEAR", "S2")) == (Decimal(5), Decimal(0))

    rest = staff_client.post(f"/api/v1/transfers/{number}/receive/", {"key": "dock-2"}, format="json")
    assert (rest.status_code, rest.json()["status"]) == (200, "received")
    assert (level("APPLE", "S2"), level("PEAR", "S2")) == (Decimal(12), Decimal(4))
    keys = sorted(StockMove.objects.filter(kind="transfer").values_list("idempotency_key", flat=True))
    assert keys == [
        f"transfer:{number}:receipt:1:1",
        f"transfer:{number}:receipt:2:1",
        f"transfer:{number}:receipt:2:2",
        f"transfer:{number}:ship:1",
        f"transfer:{number}:ship:2",
    ]


def test_a_receipt_sent_again_with_its_key_moves_nothing(staff_client, stores):
    number = create(staff_client).json()["number"]
    staff_client.post(f"/api/v1/transfers/{number}/ship/")
    body = {"key": "dock-1", "lines": [{"line_no": 1, "quantity": "5"}]}
    staff_client.post(f"/api/v1/transfers/{number}/receive/", body, format="json")

    again = staff_client.post(f"/api/v1/transfers/{number}/receive/", body, format="json")

    assert again.status_code == 200
    assert level("APPLE", "S2") == Decimal(5)


def test_receiving_more_than_outstanding_is_refused_whole(staff_client, stores):
    number = create(staff_client).json()["number"]
    staff_client.post(f"/api/v1/transfers/{number}/ship/")

    response = staff_client.post(
        f"/api/v1/transfers/{number}/receive/",
        {"lines": [{"line_no": 2, "quantity": "1"}, {"line_no": 1, "quantity": "13"}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "lines[1].quantity",
            "code": "over_receipt",
            "reason": "receiving 13.000 but only 12.000 of line 1 is outstanding",
        }
    ]
    assert (level("APPLE", "S2"), level("PEAR", "S2")) == (Decimal(0), Decimal(0))
    assert TransferOrder.objects.get().status == "shipped"


def test_shipping_twice_is_409_and_moves_nothing_more(staff_client, stores):
    number = create(staff_client).json()["number"]
    staff_client.post(f"/api/v1/transfers/{number}/ship/")

    again = staff_client.post(f"/api/v1/transfers/{number}/ship/")

    assert again.status_code == 409
    assert again.json()["errors"] == [
        {"field": "status", "code": "illegal_transition", "reason": f"{number} is shipped; cannot ship"}
    ]
    assert level("APPLE", "S1") == Decimal(18)


def test_shipping_from_a_refusing_source_without_the_stock_is_refused_and_stays_draft(staff_client, stores):
    Location.objects.filter(code="S1").update(negative_stock=Location.NegativeStock.REFUSE)
    number = create(staff_client, [{"sku": "APPLE", "quantity": "5"}, {"sku": "PEAR", "quantity": "11"}]).json()[
        "number"
    ]

    response = staff_client.post(f"/api/v1/transfers/{number}/ship/")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "negative_stock"
    assert (level("APPLE", "S1"), level("PEAR", "S1")) == (Decimal(30), Decimal(10))
    assert TransferOrder.objects.get().status == "draft"


def test_bad_transfer_input_names_each_field(staff_client, stores):
    response = staff_client.post(
        "/api/v1/transfers/",
        {"source": "S1", "destination": "S1", "lines": [{"sku": "NOPE", "quantity": "1"}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "destination", "code": "invalid", "reason": "source and destination are the same location"},
        {"field": "lines[0].sku", "code": "not_found", "reason": "no article with sku 'NOPE'"},
    ]
    assert TransferOrder.objects.count() == 0


def test_transfer_list_pins_its_query_count(staff_client, stores, django_assert_num_queries):
    for _ in range(3):
        create(staff_client)

    with django_assert_num_queries(3):  # count, orders with their locations, lines with their articles
        response = staff_client.get("/api/v1/transfers/")

    assert [order["status"] for order in response.json()["results"]] == ["draft", "draft", "draft"]


def test_transfers_are_staff_only(till, stores):
    assert till.get("/api/v1/transfers/").status_code == 403


def test_admin_actions_ship_and_receive(admin_client, stores):
    from retail.services.transfers import TransferLineSpec, transfer_create

    order = transfer_create(
        source_code="S1", destination_code="S2", lines=[TransferLineSpec(sku="APPLE", quantity=Decimal(7))]
    )
    url = "/admin/retail/transferorder/"

    admin_client.post(url, {"action": "ship", "_selected_action": [order.pk]})
    assert (level("APPLE", "S1"), TransferOrder.objects.get().status) == (Decimal(23), "shipped")
    admin_client.post(url, {"action": "receive_outstanding", "_selected_action": [order.pk]})
    assert (level("APPLE", "S2"), TransferOrder.objects.get().status) == (Decimal(7), "received")

    page = admin_client.get(url)
    assert page.status_code == 200
    assert order.number in page.content.decode()


def test_admin_refusal_is_reported_not_raised(admin_client, stores):
    from retail.services.transfers import TransferLineSpec, transfer_create

    order = transfer_create(
        source_code="S1", destination_code="S2", lines=[TransferLineSpec(sku="APPLE", quantity=Decimal(7))]
    )

    response = admin_client.post(
        "/admin/retail/transferorder/", {"action": "receive_outstanding", "_selected_action": [order.pk]}, follow=True
    )

    assert f"{order.number}: status: {order.number} is draft; cannot receive" in response.content.decode()
    assert level("APPLE", "S2") == Decimal(0)


def test_a_receipt_naming_a_line_twice_is_refused(staff_client, stores):
    number = create(staff_client).json()["number"]
    staff_client.post(f"/api/v1/transfers/{number}/ship/")

    response = staff_client.post(
        f"/api/v1/transfers/{number}/receive/",
        {"lines": [{"line_no": 1, "quantity": "1"}, {"line_no": 1, "quantity": "2"}]},
        format="json",
    )

    assert (response.status_code, response.json()["errors"]) == (
        400,
        [{"field": "lines", "code": "invalid", "reason": "line no. 1 is given twice"}],
    )
    assert level("APPLE", "S2") == Decimal(0)


@pytest.mark.postgres
def test_ship_and_receive_lock_the_order_row_before_deciding(stores):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from retail.services.transfers import TransferLineSpec, transfer_create, transfer_receive, transfer_ship

    order = transfer_create(
        source_code="S1", destination_code="S2", lines=[TransferLineSpec(sku="APPLE", quantity=Decimal(2))]
    )

    with CaptureQueriesContext(connection) as shipping:
        transfer_ship(number=order.number)
    with CaptureQueriesContext(connection) as receiving:
        transfer_receive(number=order.number)

    for captured in (shipping, receiving):
        first = next(q["sql"] for q in captured.captured_queries if "retail_transferorder" in q["sql"])
        assert first.startswith('SELECT "retail_transferorder"') and first.endswith("FOR UPDATE")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clerks_shipping_the_same_order_at_once_ship_it_once():
    import threading

    from django.db import connection

    from posinv.exceptions import Conflict
    from retail.services.transfers import TransferLineSpec, transfer_create, transfer_ship

    source = make_location(code="S1")
    make_location(code="S2")
    apple = make_article(sku="APPLE")
    stock_in(article=apple, location=source, quantity="10")
    order = transfer_create(
        source_code="S1", destination_code="S2", lines=[TransferLineSpec(sku="APPLE", quantity=Decimal(4))]
    )
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def clerk() -> None:
        barrier.wait()
        try:
            transfer_ship(number=order.number)
            outcomes.append("shipped")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=clerk) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "shipped"]
    assert level("APPLE", "S1") == Decimal(6)
    assert StockMove.objects.filter(kind="transfer").count() == 1


def test_transfer_list_filters_by_status_and_refuses_an_unknown_one(staff_client, stores):
    number = create(staff_client).json()["number"]
    create(staff_client)
    staff_client.post(f"/api/v1/transfers/{number}/ship/")

    shipped = staff_client.get("/api/v1/transfers/", {"status": "shipped"})
    bad = staff_client.get("/api/v1/transfers/", {"status": "lost"})

    assert [order["number"] for order in shipped.json()["results"]] == [number]
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "status")


def test_an_order_without_lines_cannot_ship(staff_client, stores):
    order = TransferOrder.objects.create(source=stores[0], destination=stores[1])
    from retail.services.transfers import transfer_number_assign

    number = transfer_number_assign(order=order)

    response = staff_client.post(f"/api/v1/transfers/{number}/ship/")

    assert (response.status_code, response.json()["errors"]) == (
        400,
        [{"field": "lines", "code": "required", "reason": f"{number} has no lines to ship"}],
    )
    assert TransferOrder.objects.get().status == "draft"
