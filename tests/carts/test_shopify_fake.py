"""The fake Shopify is as strict as the real one where posinv depends on it:
each rule of tests/fakes/shopify.py has a test of its own, through real HTTP."""
from __future__ import annotations

import pytest
import requests

from tests.fakes.shopify import LOCATION, FakeShopify, query_parse

OLD_ORDERS_QUERY = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    edges { cursor node { id name createdAt updatedAt cancelledAt displayFinancialStatus
      lineItems(first: 100) { nodes { id sku quantity currentQuantity title variant { barcode } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

SET = """mutation Set($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) { inventoryAdjustmentGroup { changes { name delta } }
    userErrors { code field message } } }"""


def _post(fake: FakeShopify, query: str, variables: dict | None = None, *, version: str = "2026-04"):
    return requests.post(f"{fake.url}/admin/api/{version}/graphql.json", timeout=5,
                         headers={"X-Shopify-Access-Token": fake.token},
                         json={"query": query, "variables": variables or {}})


def _set(fake: FakeShopify, quantities: list[dict], *, version: str = "2026-04", **extra):
    payload = {"name": "available", "reason": "correction", "quantities": quantities, **extra}
    return _post(fake, SET, {"input": payload}, version=version).json()


@pytest.mark.parametrize(("query", "variables", "cost"), [
    ("{ shop { name } }", {}, 1),  # an object field: 1 + its scalars (0)
    ("{ shop { name plan { displayName } } }", {}, 2),  # nested objects add up
    ("query($n: Int!) { productVariants(first: $n) { nodes { id sku } } }", {"n": 10}, 2 + 10 * 1),
    ("{ productVariants(first: 3) { edges { cursor node { id product { id } } } pageInfo { hasNextPage } } }",
     {}, 2 + 3 * (1 + 1)),  # edges/node/cursor/pageInfo are the node itself: free
    ("{ nodes(ids: [\"a\", \"b\"]) { ... on InventoryItem { id inventoryLevel(locationId: \"l\") { id } } } }",
     {}, 2 * (1 + 1)),  # a list by ids: each one 1 + its selection, through an inline fragment
    ("query { ...F } fragment F on QueryRoot { shop { name } }", {}, 1),  # fragments are followed
    (OLD_ORDERS_QUERY, {"first": 50}, 10152),  # the figure Shopify reports for our old orders query
    (SET, {}, 10),  # a mutation root field: 10, whatever it selects
    ("mutation { a: inventorySetQuantities(input: {}) { userErrors { code } } "
     "b: inventorySetQuantities(input: {}) { userErrors { code } } }", {}, 20),
])
def test_the_requested_cost_follows_shopifys_documented_rules_on_the_parsed_query(query, variables, cost):
    assert query_parse(query, variables).cost == cost


def test_a_query_above_1000_points_is_refused_whatever_the_bucket_holds():
    with FakeShopify(cost_capacity=20000) as fake:
        answer = _post(fake, OLD_ORDERS_QUERY, {"first": 50})
        assert answer.status_code == 200
        body = answer.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"] == {
            "code": "MAX_COST_EXCEEDED", "cost": 10152, "maxCost": 1000,
            "documentation": "https://shopify.dev/api/usage/rate-limits"}
        assert body["errors"][0]["message"].startswith(
            "Query cost is 10152, which exceeds the single query max cost limit (1000).")
        # nothing was charged: the same query within the limit runs at once
        ok = _post(fake, OLD_ORDERS_QUERY.replace("lineItems(first: 100)", "lineItems(first: 4)"), {"first": 50})
        assert ok.json()["extensions"]["cost"]["requestedQueryCost"] == 2 + 50 * (1 + 2 + 4 * 2) == 552
        assert ok.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 20000 - 552


@pytest.mark.parametrize("status", [200, 429])
def test_the_cost_bucket_reports_itself_and_answers_throttled_when_it_cannot_pay(status):
    with FakeShopify(cost_capacity=100, restore_rate=1, throttle_status=status) as fake:
        fake.add_variant(sku="A")
        first = _post(fake, "{ productVariants(first: 30) { nodes { id product { id } } } }").json()
        assert first["extensions"]["cost"]["requestedQueryCost"] == 62
        assert first["extensions"]["cost"]["throttleStatus"] == {
            "maximumAvailable": 100, "currentlyAvailable": 38, "restoreRate": 1}
        throttled = _post(fake, "{ productVariants(first: 30) { nodes { id product { id } } } }")
        assert throttled.status_code == status
        body = throttled.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] in (38, 39)
        assert fake.throttled_answers == 1


def test_versions_before_2026_04_know_compare_quantity_and_refuse_change_from_quantity(shopify):
    item = shopify.add_variant(sku="A", available=5).item_gid
    base = {"inventoryItemId": item, "locationId": LOCATION, "quantity": 4}
    # an unknown input field is refused like a variable of the wrong shape: no data, nothing applied
    refused = _set(shopify, [{**base, "changeFromQuantity": 5}], version="2025-10")
    assert "data" not in refused
    assert refused["errors"][0]["extensions"]["problems"] == [
        {"path": ["quantities", 0, "changeFromQuantity"],
         "explanation": "Field is not defined on InventoryQuantityInput"}]
    assert shopify.available("A") == 5
    stale = _set(shopify, [{**base, "compareQuantity": 9}], version="2025-10")
    assert stale["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "COMPARE_QUANTITY_STALE"
    assert _set(shopify, [base], version="2026-01")["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == \
        "COMPARE_QUANTITY_REQUIRED"
    assert _set(shopify, [{**base, "compareQuantity": 5}], version="2026-01")["data"]["inventorySetQuantities"][
        "userErrors"] == []
    assert shopify.available("A") == 4
    assert _set(shopify, [{**base, "quantity": 3}], version="2025-10", ignoreCompareQuantity=True)["data"][
        "inventorySetQuantities"]["userErrors"] == []
    assert shopify.available("A") == 3


def test_from_2026_04_every_quantity_carries_change_from_quantity_and_compare_quantity_is_gone(shopify):
    item = shopify.add_variant(sku="A", available=5).item_gid
    base = {"inventoryItemId": item, "locationId": LOCATION, "quantity": 4}
    for version in ("2026-04", "2026-07", "2026-10"):
        gone = _set(shopify, [{**base, "compareQuantity": 5}], version=version)
        assert gone["errors"][0]["extensions"]["problems"][0]["path"] == ["quantities", 0, "compareQuantity"]
        assert "data" not in _set(shopify, [{**base, "changeFromQuantity": 5}], version=version,
                                  ignoreCompareQuantity=True)
    missing = _set(shopify, [base])["data"]["inventorySetQuantities"]["userErrors"]
    assert [e["code"] for e in missing] == ["INVALID"]
    assert shopify.available("A") == 5
    assert _set(shopify, [{**base, "changeFromQuantity": None}])["data"]["inventorySetQuantities"]["userErrors"] == []
    assert shopify.available("A") == 4  # null opts out of compare-and-set


def test_compare_and_set_is_all_or_nothing_and_a_stale_item_is_named(shopify):
    a = shopify.add_variant(sku="A", available=5).item_gid
    b = shopify.add_variant(sku="B", available=7).item_gid
    answer = _set(shopify, [{"inventoryItemId": a, "locationId": LOCATION, "quantity": 1, "changeFromQuantity": 5},
                            {"inventoryItemId": b, "locationId": LOCATION, "quantity": 1, "changeFromQuantity": 6}])
    errors = answer["data"]["inventorySetQuantities"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("CHANGE_FROM_QUANTITY_STALE", ["input", "quantities", "1", "changeFromQuantity"])]
    assert (shopify.available("A"), shopify.available("B"), shopify.stale_answers) == (5, 7, 1)


def test_an_unknown_version_is_not_found_and_an_unknown_field_is_refused(shopify):
    assert _post(shopify, "{ shop { name } }", version="2024-01").status_code == 404
    body = _post(shopify, "{ inventoryItems(first: 2) { nodes { id } } }").json()
    assert body["errors"][0]["extensions"]["code"] == "undefinedField" and "data" not in body
    assert _post(shopify, "{ productVariants(first: 2) { nodes { id ").json()["errors"][0]["extensions"]["code"] \
        == "parseError"


def test_answers_carry_only_what_was_selected_and_nested_line_items_are_paged(shopify):
    shopify.add_variant(sku="A")
    order = shopify.place_order(lines=[("A", 1)] * 5)
    query = """query($after: String) { orders(first: 5) { nodes { id lineItems(first: 2, after: $after) {
      nodes { sku } pageInfo { hasNextPage endCursor } } } } }"""
    first = _post(shopify, query).json()["data"]["orders"]["nodes"][0]
    assert first == {"id": f"gid://shopify/Order/{order.id}", "lineItems": {
        "nodes": [{"sku": "A"}, {"sku": "A"}], "pageInfo": {"hasNextPage": True, "endCursor": "2"}}}
    rest = _post(shopify, """query($id: ID!) { order(id: $id) { lineItems(first: 250, after: "2") {
      nodes { id } pageInfo { hasNextPage } } } }""", {"id": first["id"]}).json()
    assert len(rest["data"]["order"]["lineItems"]["nodes"]) == 3
    assert rest["extensions"]["cost"]["requestedQueryCost"] == 1 + 2 + 250
