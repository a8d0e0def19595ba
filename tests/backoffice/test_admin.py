"""The back-office admin: report pages with CSV export, the purchasing
pages (suggestions to drafts, sending, receiving), reorder levels edited
through the service, and list pages without a query per row."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backoffice.models import PurchaseOrder, ReorderPlan
from backoffice.services.purchasing import purchase_order_send, purchase_orders_draft
from backoffice.services.reorder import reorder_level_set
from posinv.models import StockLevel
from posinv.services.changes import changes_dispatch
from tests.backoffice.factories import make_register, make_supplier, make_supplier_article, sell, stock_receive
from tests.backoffice.reportdata import report_data
from tests.factories import make_article, make_location

REPORT_QS = "date_from=2026-05-01&date_to=2026-05-10"


@pytest.fixture
def admin_client(db, client, django_user_model):
    user = django_user_model.objects.create_superuser(username="boss", password="boss-pass")
    client.force_login(user)
    return client


def test_every_report_page_renders_its_charts_data_and_tables(admin_client):
    report_data()
    for slug, charts in [
        ("sales", ["by_period", "by_location"]),
        ("articles", ["top", "categories"]),
        ("sell-through", ["sell_through"]),
        ("margin", ["margin"]),
        ("stock-cover", ["cover"]),
    ]:
        response = admin_client.get(f"/admin/backoffice/report/{slug}/?{REPORT_QS}")
        assert response.status_code == 200, slug
        html = response.content.decode()
        for name in charts:
            assert f'data-source="chart-data-{name}"' in html and f'id="chart-data-{name}"' in html
        assert "backoffice/charts.js" in html


def test_report_index_lists_the_pages(admin_client):
    html = admin_client.get("/admin/backoffice/report/").content.decode()
    assert [
        slug for slug in ["sales", "articles", "sell-through", "margin", "stock-cover"] if f"/report/{slug}/" in html
    ] == [
        "sales",
        "articles",
        "sell-through",
        "margin",
        "stock-cover",
    ]


def test_csv_export_has_the_same_figures(admin_client):
    report_data()

    response = admin_client.get(f"/admin/backoffice/report/sales/?{REPORT_QS}&format=csv&table=comparison")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="sales-comparison.csv"'
    assert response.content.decode().splitlines() == [
        "Location,Revenue,Previous revenue,Change %,Quantity,Previous quantity,Receipts,Previous receipts",
        "S1,42.00,10.00,320.0,19.000,5.000,2,1",
        "S2,2.50,0.00,,2.000,0.000,1,0",
        "all locations,44.50,10.00,345.0,21.000,5.000,3,1",
    ]
    margin = admin_client.get(f"/admin/backoffice/report/margin/?{REPORT_QS}&format=csv")
    assert margin.content.decode().splitlines() == [
        "SKU,Name,Quantity,Revenue,Cost,Margin,Margin %",
        "A,Apple,13.000,25.00,15.60,9.40,37.6",
    ]


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("date_from=2026-05-10&date_to=2026-05-01&format=csv", 400, "date_to: must not be before date_from"),
        ("date_from=yesterday&format=csv", 400, "date_from: Enter a valid date."),
        ("location=NOPE&format=csv", 400, "location: unknown location &#x27;NOPE&#x27;"),
        ("format=csv&table=nope", 400, "table: expected one of comparison, by_period"),
        ("date_from=2026-05-10&date_to=2026-05-01", 400, "date_to: must not be before date_from"),
    ],
)
def test_bad_report_filters_are_a_400_with_the_reason(admin_client, query, status, text):
    report_data()
    response = admin_client.get(f"/admin/backoffice/report/sales/?{query}")
    assert response.status_code == status
    assert text.replace("&#x27;", "'") in response.content.decode().replace("&#x27;", "'")


@pytest.fixture
def purchasing(db):
    store = make_location(code="S1")
    register = make_register(location=store, code="R1")
    supplier = make_supplier(code="FRUIT")
    articles = []
    for index in range(5):
        article = make_article(sku=f"F{index}")
        make_supplier_article(supplier=supplier, article=article, pack_size="4", cost="1.00")
        stock_receive(article=article, location=store, quantity="10")
        reorder_level_set(article_id=article.pk, location_id=store.pk, reorder_point="8", order_up_to="20")
        articles.append(article)
    sell(register=register, at=datetime(2026, 5, 4, tzinfo=UTC), items=[(a.sku, "5", "2.00") for a in articles])
    changes_dispatch()
    return store, supplier, articles


def test_the_suggestion_action_creates_a_draft_order(admin_client, purchasing):
    from posinv.models import ReorderSuggestion

    ids = list(ReorderSuggestion.objects.values_list("pk", flat=True))
    response = admin_client.post(
        "/admin/backoffice/ordersuggestion/", {"action": "draft_orders", "_selected_action": ids}, follow=True
    )

    order = PurchaseOrder.objects.get()
    assert f"1 draft order(s), 5 line(s): {order.number}" in response.content.decode()
    assert list(order.lines.values_list("quantity_ordered", flat=True)) == [Decimal("16.000")] * 5


def test_the_receive_page_books_a_delivery_and_refuses_bad_quantities(admin_client, purchasing):
    store, _, articles = purchasing
    order = purchase_orders_draft().orders[0]
    purchase_order_send(order_id=order.pk)
    url = f"/admin/backoffice/purchaseorder/{order.pk}/receive/"

    bad = admin_client.post(url, {"delivery_note": "DN-1", "line_1": "17"})
    assert bad.status_code == 400
    assert "lines[0].quantity: 17 is more than the 16.000 still outstanding on line 1" in bad.content.decode()
    assert StockLevel.objects.get(article=articles[0], location=store).on_hand == Decimal("5.000")

    good = admin_client.post(url, {"delivery_note": "DN-1", "line_1": "16", "line_2": "4"}, follow=True)
    assert "delivery DN-1 booked; order is partly received." in good.content.decode()
    assert StockLevel.objects.get(article=articles[0], location=store).on_hand == Decimal("21.000")
    assert StockLevel.objects.get(article=articles[1], location=store).on_hand == Decimal("9.000")


def test_editing_a_reorder_level_in_the_list_goes_through_the_service(admin_client, purchasing):
    store, _, articles = purchasing
    level = StockLevel.objects.get(article=articles[0], location=store)
    response = admin_client.post(
        f"/admin/backoffice/reorderlevel/?location__id__exact={store.pk}&q=F0",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(level.pk),
            "form-0-reorder_point": "3",
            "form-0-order_up_to": "12",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    level.refresh_from_db()
    assert (level.reorder_point, level.order_up_to) == (Decimal("3.000"), Decimal("12.000"))
    assert ReorderPlan.objects.get(article=articles[0], location=store).set_by == "boss"
    # on hand 5 >= new point 3: the suggestion closed at once
    assert articles[0].suggestions.get().state == "closed"


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/backoffice/supplier/",
        "/admin/backoffice/supplierarticle/",
        "/admin/backoffice/purchaseorder/",
        "/admin/backoffice/reorderlevel/",
        "/admin/backoffice/ordersuggestion/",
        "/admin/backoffice/customerhistory/",
        "/admin/backoffice/reorderplan/",
    ],
)
def test_list_pages_make_no_query_per_row(admin_client, purchasing, url):
    store, supplier, articles = purchasing
    purchase_orders_draft()
    few = _queries(admin_client, url)

    more = make_supplier(code="MORE")
    for index in range(6):
        article = make_article(sku=f"M{index}")
        make_supplier_article(supplier=more, article=article, pack_size="2")
        stock_receive(article=article, location=store, quantity="1")
        reorder_level_set(article_id=article.pk, location_id=store.pk, reorder_point="5", order_up_to="9")
    sell(
        register=make_register(location=store),
        at=datetime(2026, 5, 5, tzinfo=UTC),
        items=[("M0", "1", "1")],
        customer_no="C1",
    )
    sell(
        register=make_register(location=store),
        at=datetime(2026, 5, 5, tzinfo=UTC),
        items=[("M1", "1", "1")],
        customer_no="C2",
    )
    purchase_orders_draft()
    make_supplier(code="OTHER")

    assert _queries(admin_client, url) == few


def test_the_demo_loader_fills_reports_levels_and_drafts_once(db):
    from django.core.management import call_command

    from backoffice.models import Supplier, SupplierArticle
    from pos.models import Receipt

    call_command("demo_data", stdout=io.StringIO())
    receipts = Receipt.objects.filter(register__code="BO-S1").count()

    assert Supplier.objects.filter(code="HW-SUPPLY").count() == 1
    assert SupplierArticle.objects.filter(supplier__code="HW-SUPPLY", cost__isnull=False).count() > 0
    assert receipts > 45
    assert StockLevel.objects.filter(location__code="S1", reorder_point__isnull=False).count() > 0
    call_command("demo_data", stdout=io.StringIO())
    assert Receipt.objects.filter(register__code="BO-S1").count() == receipts


def test_an_order_added_by_hand_gets_the_next_number_and_its_lines(admin_client, purchasing):
    store, supplier, articles = purchasing
    response = admin_client.post(
        "/admin/backoffice/purchaseorder/add/",
        {
            "supplier": supplier.pk,
            "location": store.pk,
            "note": "phone order",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-0-line_no": "1",
            "lines-0-article": articles[2].pk,
            "lines-0-quantity_ordered": "8",
            "lines-0-unit_cost": "1.10",
        },
    )

    assert response.status_code == 302
    order = PurchaseOrder.objects.get()
    assert (order.number, order.state, order.note) == (f"PO-{order.pk:06d}", "draft", "phone order")
    assert list(order.lines.values_list("article__sku", "quantity_ordered")) == [("F2", Decimal("8.000"))]


def test_a_sent_order_s_page_links_to_receiving(admin_client, purchasing):
    order = purchase_orders_draft().orders[0]
    draft_page = admin_client.get(f"/admin/backoffice/purchaseorder/{order.pk}/change/").content.decode()
    purchase_order_send(order_id=order.pk)
    sent_page = admin_client.get(f"/admin/backoffice/purchaseorder/{order.pk}/change/").content.decode()

    receive_url = f"/admin/backoffice/purchaseorder/{order.pk}/receive/"
    assert receive_url not in draft_page
    assert receive_url in sent_page
