"""Order import: polled and pushed orders move stock once, reach the other
carts, and unknown SKUs are kept and retried."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal

from django.test import Client

from carts.connectors.webhook import sign
from carts.models import ExternalStore, ImportedOrder, ImportedOrderLine, StackEntry
from carts.services.orders import order_lines_retry, orders_import
from carts.services.stores import store_available
from posinv.models import StockLevel, StockMove
from posinv.services.changes import changes_dispatch
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, receive
from tests.factories import make_article


def _on_hand(sku: str, location) -> Decimal:
    return StockLevel.objects.get(article__sku=sku, location=location).on_hand


def _shopify_signed(body: bytes, secret: str = "whsec") -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_an_imported_shopify_order_posts_sales_once_and_reaches_the_other_cart_only(
        sync_on, shopify, woo, shop_location):
    articles("A-1", "B-2")
    shopify.add_variant(sku="A-1")
    shopify.add_variant(sku="B-2")
    woo.add_product(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location, import_orders=True)
    wc = make_woo_store(woo, location=shop_location)
    link_all(shop)
    link_all(wc)
    receive("A-1", shop_location, 10)
    receive("B-2", shop_location, 4)
    StackEntry.objects.all().delete()
    shopify.place_order(lines=[("A-1", 2), ("B-2", 1)])
    # when imported twice (the second run re-reads the boundary and skips what it committed)
    first = orders_import(store=shop)
    second = orders_import(store=shop)
    changes_dispatch()  # what the ledger's after-commit wake-up runs
    # then one order, two posted lines, stock moved once, keyed by store, order and line
    assert (first.orders, second.orders) == (1, 0)
    order = ImportedOrder.objects.get()
    assert (order.status, order.number) == ("open", "#1003")
    assert sorted(order.lines.values_list("sku", "state", "quantity")) == [
        ("A-1", "posted", Decimal("2.000")), ("B-2", "posted", Decimal("1.000"))]
    assert (_on_hand("A-1", shop_location), _on_hand("B-2", shop_location)) == (Decimal(8), Decimal(3))
    move = StockMove.objects.get(article__sku="A-1", kind="order")
    assert (move.origin, move.origin_code, move.quantity) == ("store", "shopify", Decimal("-2.000"))
    assert move.idempotency_key == "cart:shopify:gid://shopify/Order/1003:gid://shopify/LineItem/1004:sale"
    # only the other cart is told, and only about the linked article
    assert list(StackEntry.objects.values_list("store__code", "article__sku", "quantity")) == [("woo", "A-1", 8)]
    assert shop.__class__.objects.get(pk=shop.pk).order_cursor["modified_at"]


def test_a_pushed_order_racing_the_poll_moves_stock_once_and_a_cancellation_returns_it(
        sync_on, shopify, shop_location, client):
    articles("A-1")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location, import_orders=True)
    link_all(shop)
    receive("A-1", shop_location, 10)
    order = shopify.place_order(lines=[("A-1", 3)])
    body = json.dumps(shopify.order_webhook_body(order)).encode()
    answer = client.post("/api/v1/carts/shopify/webhook/", body, content_type="application/json",
                         HTTP_X_SHOPIFY_HMAC_SHA256=_shopify_signed(body))
    assert answer.status_code == 200
    assert answer.json()["orders"][0]["lines"][0]["state"] == "posted"
    orders_import(store=shop)
    assert _on_hand("A-1", shop_location) == Decimal(7)
    assert StockMove.objects.filter(kind="order").count() == 1
    # when the shop cancels it
    shopify.cancel_order(order)
    orders_import(store=shop)
    line = ImportedOrderLine.objects.get()
    assert (line.state, line.returned_quantity) == ("returned", Decimal("3.000"))
    assert _on_hand("A-1", shop_location) == Decimal(10)
    # a late copy of the open order does not reopen it
    client.post("/api/v1/carts/shopify/webhook/", body, content_type="application/json",
                HTTP_X_SHOPIFY_HMAC_SHA256=_shopify_signed(body))
    assert (ImportedOrder.objects.get().status, _on_hand("A-1", shop_location)) == ("cancelled", Decimal(10))


def test_a_webhook_with_a_bad_signature_is_refused_and_nothing_is_stored(sync_on, shopify, shop_location, client):
    articles("A-1")
    make_shopify_store(shopify, location=shop_location, import_orders=True)
    shopify.add_variant(sku="A-1")
    order = shopify.place_order(lines=[("A-1", 1)])
    body = json.dumps(shopify.order_webhook_body(order)).encode()
    answer = client.post("/api/v1/carts/shopify/webhook/", body, content_type="application/json",
                         HTTP_X_SHOPIFY_HMAC_SHA256=_shopify_signed(body, secret="wrong"))
    assert answer.status_code == 403
    assert answer.json() == {"errors": [{"code": "forbidden", "field": "signature",
                                         "reason": "missing or invalid signature"}]}
    assert ImportedOrder.objects.count() == 0 and StockMove.objects.count() == 0


def test_an_unknown_sku_is_kept_with_its_reason_and_posted_once_the_article_exists(sync_on, woo, shop_location):
    woo.add_product(sku="NEW-1", stock=5)
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    woo.place_order(lines=[("NEW-1", 2)])
    result = orders_import(store=wc)
    line = ImportedOrderLine.objects.get()
    assert (result.orders, result.lines_unknown) == (1, 1)
    assert (line.state, line.reason) == ("unknown_sku", "no article with SKU 'NEW-1'")
    assert StockMove.objects.count() == 0
    # when the article is created, the retry posts the line
    make_article(sku="NEW-1")
    assert order_lines_retry(store=wc) == 0
    line.refresh_from_db()
    assert (line.state, line.reason) == ("posted", "")
    assert _on_hand("NEW-1", shop_location) == Decimal(-2)


def test_a_pending_order_reserves_stock_for_the_other_carts_until_it_is_paid(sync_on, woo, shopify, shop_location):
    articles("A-1")
    woo.add_product(sku="A-1", stock=10)
    shopify.add_variant(sku="A-1")
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(wc)
    link_all(shop)
    receive("A-1", shop_location, 10)
    StackEntry.objects.all().delete()
    order = woo.place_order(lines=[("A-1", 4)], status="pending")
    orders_import(store=wc)
    # then no move, but Shopify is told 6 (10 on hand - 4 reserved); Woo, which
    # has not taken the stock of its pending order, keeps selling 10
    assert ImportedOrderLine.objects.get().state == "reserved"
    assert StockMove.objects.filter(kind="order").count() == 0
    assert list(StackEntry.objects.values_list("store__code", "quantity")) == [("shopify", 6)]
    assert store_available(store=wc, article_ids=[ImportedOrderLine.objects.get().article_id]) == {
        ImportedOrderLine.objects.get().article_id: 10}
    # when it is paid, the sale is posted and the reservation released: still 6
    woo.advance(1)
    woo.set_order_status(order, "processing")
    orders_import(store=wc)
    assert ImportedOrderLine.objects.get().state == "posted"
    assert _on_hand("A-1", shop_location) == Decimal(6)
    assert store_available(store=shop, article_ids=[ImportedOrderLine.objects.get().article_id]) == {
        ImportedOrderLine.objects.get().article_id: 6}


def test_the_generic_webhook_takes_signed_orders_and_partial_refunds(sync_on, shop_location):
    client = Client()
    articles("A-1")
    store = ExternalStore.objects.create(code="hook", name="Hook", platform="webhook", url="http://127.0.0.1:9/",
                                         secrets={"secret": "s3"}, import_orders=True)
    store.locations.add(shop_location)
    receive("A-1", shop_location, 10)

    def push(payload):
        body = json.dumps(payload).encode()
        stamp = str(int(time.time()))
        return client.post("/api/v1/carts/hook/webhook/", body, content_type="application/json",
                           HTTP_X_POSINV_TIMESTAMP=stamp, HTTP_X_POSINV_SIGNATURE=sign("s3", stamp, body))

    order = {"id": "o-1", "number": "1", "status": "open", "lines": [{"id": "1", "sku": "A-1", "quantity": 5}]}
    assert push({"orders": [order]}).status_code == 200
    order["lines"][0]["refunded_quantity"] = 2
    assert push({"orders": [order]}).status_code == 200
    assert _on_hand("A-1", shop_location) == Decimal(7)
    assert ImportedOrderLine.objects.get().returned_quantity == Decimal(2)
    # malformed input: the field and the reason, nothing applied
    answer = push({"orders": [{"id": "o-2", "status": "shipped", "lines": []}]})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "orders[0].status"
    assert ImportedOrder.objects.count() == 1
