"""The fake WooCommerce is as strict as the real one (platforms.md): one test
per rule, over real HTTP, without posinv in between."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import requests

from tests.fakes.woocommerce import BASE, FakeWooCommerce


@pytest.fixture
def fake():
    with FakeWooCommerce() as server:
        yield server


def _get(fake, path, **params):
    return requests.get(f"{fake.url}{BASE}{path}", params=params, auth=(fake.key, fake.secret), timeout=5)


def _post(fake, path, body):
    return requests.post(f"{fake.url}{BASE}{path}", json=body, auth=(fake.key, fake.secret), timeout=5)


def _meta(line: dict) -> dict:
    return {m["key"]: m["value"] for m in line["meta_data"]}


def test_a_batch_of_more_than_100_items_in_all_is_refused_with_413(fake):
    product = fake.add_product(sku="A", stock=1)
    body = {"create": [{"name": f"n{n}"} for n in range(50)], "update": [{"id": product["id"], "stock_quantity": 2}]
            * 40, "delete": list(range(11))}
    answer = _post(fake, "/products/batch", body)
    assert answer.status_code == 413
    assert answer.json() == {"code": "woocommerce_rest_request_entity_too_large",
                             "message": "Unable to accept more than 100 items for this request.",
                             "data": {"status": 413}}
    assert fake.stock("A") == 1  # nothing of it applied
    body["delete"] = body["delete"][:10]
    assert _post(fake, "/products/batch", body).status_code == 200


def test_a_bad_item_fails_inside_a_200_and_the_others_apply(fake):
    good = fake.add_product(sku="A", stock=1)
    answer = _post(fake, "/products/batch", {"update": [
        {"id": good["id"], "stock_quantity": 7}, {"id": 999999, "stock_quantity": 1},
        {"id": good["id"], "stock_quantity": "7"}]})
    assert answer.status_code == 200
    update = answer.json()["update"]
    assert update[0]["stock_quantity"] == 7
    assert update[1] == {"id": 999999, "error": {"code": "woocommerce_rest_product_invalid_id",
                                                 "message": "Invalid ID.", "data": {"status": 400}}}
    assert update[2]["error"]["code"] == "rest_invalid_param"
    assert fake.stock("A") == 7


def test_lists_page_with_totals_and_link_headers_and_refuse_per_page_above_100(fake):
    for n in range(205):
        fake.add_product(sku=f"P{n}", stock=1)
    first = _get(fake, "/products", per_page=100, page=1)
    assert (first.headers["X-WP-Total"], first.headers["X-WP-TotalPages"]) == ("205", "3")
    assert len(first.json()) == 100
    assert 'rel="next"' in first.headers["Link"] and "page=2" in first.headers["Link"]
    last = _get(fake, "/products", per_page=100, page=3)
    assert len(last.json()) == 5 and 'rel="next"' not in last.headers["Link"] and 'rel="prev"' in last.headers["Link"]
    too_many = _get(fake, "/products", per_page=101)
    assert too_many.status_code == 400
    assert too_many.json() == {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page",
                               "data": {"status": 400}}
    past = _get(fake, "/products", per_page=100, page=4)
    assert past.status_code == 400 and past.json()["code"] == "woocommerce_rest_invalid_page_number"


def test_a_pending_order_takes_no_stock_and_paying_it_does_once(fake):
    fake.add_product(sku="A", stock=10)
    order = fake.place_order(lines=[("A", 3)], status="pending")
    assert fake.stock("A") == 10
    fake.set_order_status(order, "processing")
    assert fake.stock("A") == 7
    fake.set_order_status(order, "completed")  # already reduced: not again
    assert fake.stock("A") == 7
    assert _meta(_get(fake, "/orders").json()[0]["line_items"][0]) == {"_reduced_stock": "3"}


def test_on_hold_takes_stock_and_cancelling_gives_it_back(fake):
    fake.add_product(sku="A", stock=10)
    order = fake.place_order(lines=[("A", 4)], status="on-hold")
    assert fake.stock("A") == 6
    fake.set_order_status(order, "cancelled")
    assert fake.stock("A") == 10
    assert _meta(_get(fake, "/orders").json()[0]["line_items"][0]) == {}


def test_cancelling_a_pending_order_gives_nothing_back(fake):
    fake.add_product(sku="A", stock=10)
    order = fake.place_order(lines=[("A", 4)], status="pending")
    fake.set_order_status(order, "cancelled")
    assert fake.stock("A") == 10


def test_a_refund_gives_stock_back_only_when_restocked(fake):
    fake.add_product(sku="A", stock=10)
    fake.add_product(sku="B", stock=10)
    restocked = fake.place_order(lines=[("A", 2)])
    kept = fake.place_order(lines=[("B", 2)])
    fake.refund(restocked, restock=True)
    fake.refund(kept, restock=False)
    assert (fake.stock("A"), fake.stock("B")) == (10, 8)
    by_id = {o["id"]: o for o in _get(fake, "/orders").json()}
    assert by_id[restocked["id"]]["status"] == by_id[kept["id"]]["status"] == "refunded"
    assert _meta(by_id[restocked["id"]]["line_items"][0])["_restock_refunded_items"] == "2"
    assert "_restock_refunded_items" not in _meta(by_id[kept["id"]]["line_items"][0])


def test_marking_an_order_refunded_by_status_alone_restocks_nothing(fake):
    fake.add_product(sku="A", stock=10)
    order = fake.place_order(lines=[("A", 2)])
    fake.set_order_status(order, "refunded")
    assert fake.stock("A") == 8


def test_modified_after_is_strictly_after_at_whole_seconds_in_gmt_only_with_the_flag(fake):
    fake.add_product(sku="A", stock=10)
    order = fake.place_order(lines=[("A", 1)])
    stamp = datetime.fromisoformat(order["date_modified_gmt"])

    def ids(after: datetime, **extra):
        answer = _get(fake, "/orders", modified_after=after.isoformat(), **extra)
        assert answer.status_code == 200, answer.text
        return [o["id"] for o in answer.json()]

    assert ids(stamp, dates_are_gmt="true") == []  # strictly after
    assert ids(stamp - timedelta(seconds=1), dates_are_gmt="true") == [order["id"]]
    assert ids(stamp + timedelta(milliseconds=900) - timedelta(seconds=1), dates_are_gmt="true") == [order["id"]]
    # without the flag the bound is the site's local time (GMT-5 here): a GMT bound an hour back misses it
    assert ids(stamp - timedelta(hours=1)) == []
    assert ids(stamp - timedelta(hours=5, seconds=1)) == [order["id"]]


def test_orders_sort_by_modification_when_asked(fake):
    fake.add_product(sku="A", stock=10)
    first = fake.place_order(lines=[("A", 1)])
    fake.advance(1)
    second = fake.place_order(lines=[("A", 1)])
    fake.advance(1)
    fake.set_order_status(first, "completed")
    by_date = [o["id"] for o in _get(fake, "/orders", orderby="date", order="asc").json()]
    by_modified = [o["id"] for o in _get(fake, "/orders", orderby="modified", order="asc").json()]
    assert (by_date, by_modified) == ([first["id"], second["id"]], [second["id"], first["id"]])
    assert _get(fake, "/orders", orderby="nonsense").json()["code"] == "rest_invalid_param"


def test_errors_have_code_message_and_status(fake):
    unauthorized = requests.get(f"{fake.url}{BASE}/products", auth=("ck_x", "cs_x"), timeout=5)
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list "
                                   "resources.", "data": {"status": 401}}
    missing = _get(fake, "/nothing")
    assert missing.status_code == 404 and missing.json()["data"] == {"status": 404}


def test_a_host_rate_limit_answers_429_with_retry_after(fake):
    fake.add_product(sku="A", stock=1)
    fake.throttle_for(5, retry_after=2)
    answer = _get(fake, "/products")
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "2")
