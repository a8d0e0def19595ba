"""Connectors against the fake platforms: pagination, batch limits,
throttling answers, auth failures, and the shared rate budget."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from carts.connectors.base import PermanentError, QuantityUpdate, RateSpec, Throttled, connector_class
from carts.connectors.shopify import ShopifyConnector
from carts.connectors.webhook import WebhookConnector, sign
from carts.connectors.woocommerce import WooCommerceConnector
from carts.ratelimit import LocalBudget, RedisBudget, budget_key
from tests.fakes.shopify import LOCATION, FakeShopify


def _shopify(fake: FakeShopify, **secrets) -> ShopifyConnector:
    return ShopifyConnector(url=fake.url, params={"location_id": LOCATION},
                            secrets={"access_token": fake.token, **secrets})


def test_shopify_lists_variants_across_pages_with_their_available_quantity(shopify):
    for n in range(180):
        shopify.add_variant(sku=f"V-{n:03}", available=n, barcode=f"{n:013}")
    products = list(_shopify(shopify).list_products())
    assert len(products) == 180
    assert (products[179].sku, products[179].quantity, products[179].barcode) == ("V-179", 179, "0000000000179")
    assert products[0].ref == f"gid://shopify/InventoryItem/{shopify.by_sku('V-000').id}"
    assert shopify.count(status=200) == 2  # 150 (752 points) + 30


def test_shopify_compare_and_set_refuses_the_whole_call_when_one_item_is_stale(shopify):
    a = shopify.add_variant(sku="A", available=5)
    b = shopify.add_variant(sku="B", available=7)
    outcomes = _shopify(shopify).push_quantities([QuantityUpdate(a.item_gid, 4, expected=5),
                                                   QuantityUpdate(b.item_gid, 6, expected=9)])
    assert [o.status for o in outcomes] == ["unapplied", "stale"]
    assert (shopify.available("A"), shopify.available("B")) == (5, 7)
    assert [o.status for o in _shopify(shopify).push_quantities([QuantityUpdate(a.item_gid, 4, expected=5)])] == ["ok"]
    assert shopify.available("A") == 4


@pytest.mark.parametrize("status", [200, 429])
def test_shopify_throttled_answers_become_a_wait_on_the_shared_budget(status):
    with FakeShopify(cost_capacity=30, restore_rate=1, throttle_status=status) as fake:
        item = fake.add_variant(sku="A").item_gid
        connector = _shopify(fake)
        connector.push_quantities([QuantityUpdate(item, 1, expected=0)])  # 20 points left
        # another app on the same shop spends 15 points
        requests.post(f"{fake.url}/admin/api/2026-04/graphql.json", headers={"X-Shopify-Access-Token": fake.token},
                      json={"query": "{ productVariants(first: $first) { edges { node { id } } } }",
                            "variables": {"first": 13}}, timeout=5)
        with pytest.raises(Throttled, match="THROTTLED|429") as throttled:
            connector.push_quantities([QuantityUpdate(item, 2, expected=1)])
        assert 4 <= throttled.value.retry_after <= 6  # (10 - 5 available) / 1 per second
        assert fake.available("A") == 1
        # the budget is blocked for everyone using this credential: no call goes out
        calls = len(fake.requests)
        with pytest.raises(Throttled, match="rate budget spent"):
            _shopify(fake).push_quantities([QuantityUpdate(item, 2, expected=1)])
        assert len(fake.requests) == calls


def test_a_refused_access_token_is_a_permanent_error_with_the_answer(shopify):
    connector = ShopifyConnector(url=shopify.url, params={"location_id": LOCATION}, secrets={"access_token": "bad"})
    with pytest.raises(PermanentError) as error:
        list(connector.list_products())
    assert error.value.response.startswith("HTTP 401: ")
    assert "Invalid API key or access token" in error.value.response


def test_woocommerce_lists_simple_products_and_variations_over_pages(woo):
    for n in range(120):
        woo.add_product(sku=f"P-{n:03}", stock=n)
    woo.add_variable(name="Shirt", skus={"SH-S": 1, "SH-M": 2})
    connector = WooCommerceConnector(url=woo.url, params={}, secrets={"consumer_key": woo.key,
                                                                      "consumer_secret": woo.secret})
    products = {p.sku: p for p in connector.list_products()}
    assert len(products) == 122
    assert products["SH-M"].ref.startswith("v:") and products["SH-M"].quantity == 2
    assert products["P-119"].quantity == 119
    refs = [products["SH-S"].ref, products["P-005"].ref]
    assert connector.fetch_quantities(refs) == {products["SH-S"].ref: 1, products["P-005"].ref: 5}


def test_woocommerce_answers_413_above_100_items_and_per_item_errors_inside_a_200(woo):
    auth = (woo.key, woo.secret)
    too_many = requests.post(f"{woo.url}/wp-json/wc/v3/products/batch", auth=auth,
                             json={"update": [{"id": n, "stock_quantity": 1} for n in range(101)]}, timeout=5)
    assert too_many.status_code == 413
    assert too_many.json()["code"] == "woocommerce_rest_request_entity_too_large"
    product = woo.add_product(sku="A", stock=1)
    connector = WooCommerceConnector(url=woo.url, params={}, secrets={"consumer_key": woo.key,
                                                                      "consumer_secret": woo.secret})
    outcomes = connector.push_quantities([QuantityUpdate(f"p:{product['id']}", 9), QuantityUpdate("p:999999", 3)])
    assert [(o.status, o.remote_quantity) for o in outcomes] == [("ok", 9), ("error", None)]
    assert "woocommerce_rest_product_invalid_id" in outcomes[1].message


def test_the_generic_webhook_signs_what_it_sends():
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["X-Posinv-Timestamp"], self.headers["X-Posinv-Signature"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connector = WebhookConnector(url=f"http://127.0.0.1:{server.server_address[1]}/stock", params={},
                                     secrets={"secret": "s3"})
        outcomes = connector.push_quantities([QuantityUpdate("A-1", 4)])
    finally:
        server.shutdown()
    stamp, signature, body = received[0]
    assert [o.status for o in outcomes] == ["ok"]
    assert json.loads(body) == {"quantities": [{"sku": "A-1", "quantity": 4}]}
    assert signature == sign("s3", stamp, body)


def test_connectors_declare_their_parameters_and_which_are_secret():
    cls = connector_class("shopify")
    assert [(p.name, p.secret) for p in cls.params] == [
        ("location_id", False), ("access_token", True), ("webhook_secret", True)]
    assert cls.api_versions == ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")
    assert cls.check_config(params={}, secrets={}) == ["location_id", "access_token"]
    with pytest.raises(KeyError, match="unknown platform 'magento'"):
        connector_class("magento")


def test_the_local_budget_refills_over_time():
    budget = LocalBudget(capacity=2, per_second=20)
    assert [budget.take(), budget.take()] == [0.0, 0.0]
    assert budget.take() > 0
    time.sleep(0.06)
    assert budget.take() == 0.0


@pytest.mark.redis
def test_two_workers_share_one_budget_per_credential_in_redis(redis_conn):
    spec = RateSpec(capacity=3, per_second=0.5)
    key = budget_key("shopify", "https://shop|token")
    first = RedisBudget(connection=redis_conn, key=key, capacity=spec.capacity, per_second=spec.per_second)
    second = RedisBudget(connection=redis_conn, key=key, capacity=spec.capacity, per_second=spec.per_second)
    other = RedisBudget(connection=redis_conn, key=budget_key("shopify", "https://shop|other"), capacity=3,
                        per_second=0.5)
    assert [first.take(), second.take(), first.take()] == [0.0, 0.0, 0.0]
    assert second.take() > 1.5  # the bucket both draw from is empty
    assert other.take() == 0.0  # another credential has its own
    first.block(5)
    assert 4 < second.take() <= 5


def test_shopify_paces_itself_from_the_cost_reported_on_every_answer():
    # given a shop whose cost bucket holds 25 points and refills 10 a second
    with FakeShopify(cost_capacity=25, restore_rate=10) as fake:
        item = fake.add_variant(sku="A").item_gid
        connector = _shopify(fake)
        connector.push_quantities([QuantityUpdate(item, 1, expected=0)])  # 15 points left: < 2 writes
        # then the next write waits on our side instead of earning THROTTLED
        with pytest.raises(Throttled, match="rate budget spent") as waiting:
            connector.push_quantities([QuantityUpdate(item, 2, expected=1)])
        assert 0.2 < waiting.value.retry_after <= 0.5
        assert [status for _, _, status in fake.requests] == [200]
        time.sleep(waiting.value.retry_after + 0.05)
        assert [o.status for o in connector.push_quantities([QuantityUpdate(item, 2, expected=1)])] == ["ok"]


def test_the_rest_call_limit_header_makes_every_worker_wait_before_a_429(shopify):
    # given the legacy REST bucket of 40 calls leaking 2 a second, 38 already used by another app
    shopify.rest_capacity, shopify.rest_leak = 40, 0.01
    variant = shopify.add_variant(sku="A")
    url = f"{shopify.url}/admin/api/2026-04/inventory_levels/set.json"
    headers = {"X-Shopify-Access-Token": shopify.token}
    for n in range(38):
        requests.post(url, json={"location_id": 1, "inventory_item_id": variant.id, "available": n},
                      headers=headers, timeout=5)
    connector = _shopify(shopify)
    answer = connector.request("POST", url, json={"location_id": 1, "inventory_item_id": variant.id,
                                                  "available": 7}, headers=headers, sends=True)
    assert (answer.status_code, answer.headers["X-Shopify-Shop-Api-Call-Limit"]) == (200, "39/40")
    # then the shared budget holds the next call back instead of earning a 429
    with pytest.raises(Throttled, match="rate budget spent"):
        _shopify(shopify).request("POST", url, json={}, headers=headers)
    assert shopify.count(status=429) == 0 and shopify.available("A") == 7
