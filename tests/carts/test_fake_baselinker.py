"""The fake BaseLinker-style API holds each of the platform's rules
(tests/fakes/baselinker.py), so a connector that breaks one is caught."""
from __future__ import annotations

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.fakes.baselinker import FakeBaseLinker


def call(fake: FakeBaseLinker, method: str, token: str | None = None, **parameters) -> requests.Response:
    return requests.post(f"{fake.url}/connector.php", timeout=5,
                         data={"method": method, "parameters": json.dumps(parameters)},
                         headers={"X-BLToken": token or fake.token})


def stock_page(fake: FakeBaseLinker, page: int = 1) -> dict:
    return call(fake, "getInventoryProductsStock", inventory_id=fake.inventory_id, page=page).json()


def test_the_101st_request_in_a_rolling_window_blocks_the_token_until_the_window_has_room():
    with FakeBaseLinker(window_seconds=2.0) as fake:
        answers = [stock_page(fake)["status"] for _ in range(100)]
        blocked = stock_page(fake)
        assert answers == ["SUCCESS"] * 100
        assert blocked["status"] == "ERROR" and blocked["error_code"] == "ERROR_BLOCKED_TOKEN"
        assert blocked["error_message"].startswith("Query limit exceeded, token blocked until ")
        # Refused until the named time, whatever is asked meanwhile.
        assert stock_page(fake)["error_code"] == "ERROR_BLOCKED_TOKEN"
        time.sleep(max(fake.blocked_until - time.time(), 0) + 0.05)
        assert stock_page(fake)["status"] == "SUCCESS"


def test_the_limit_is_a_rolling_window_not_a_bucket_that_starts_full():
    """Requests spread so that no window ever holds more than 100 pass; 100
    more right after the first 100 (a bucket refilled meanwhile would take
    them) do not."""
    with FakeBaseLinker(per_minute=10, window_seconds=1.0) as fake:
        for _ in range(10):
            assert stock_page(fake)["status"] == "SUCCESS"
        time.sleep(0.6)  # half a window: a refilling bucket would have room again
        assert stock_page(fake)["error_code"] == "ERROR_BLOCKED_TOKEN"
    with FakeBaseLinker(per_minute=10, window_seconds=1.0) as fake:
        statuses = []
        for _ in range(15):
            statuses.append(stock_page(fake)["status"])
            time.sleep(0.11)  # 9 requests per window at most
        assert statuses == ["SUCCESS"] * 15 and fake.blocked_answers == 0


def test_the_blocked_until_time_is_warsaw_local_time_to_the_second():
    with FakeBaseLinker(per_minute=1) as fake:
        stock_page(fake)
        message = stock_page(fake)["error_message"]
        named = datetime.strptime(message.rsplit("until ", 1)[1], "%Y-%m-%d %H:%M:%S")
        in_warsaw = named.replace(tzinfo=ZoneInfo("Europe/Warsaw"))
        # Read as Warsaw time it is the blocked-until instant; read as UTC it would be 1-2 hours off.
        assert in_warsaw.timestamp() == fake.blocked_until
        assert 55 <= fake.blocked_until - time.time() <= 61


def test_product_pages_hold_1000_each():
    with FakeBaseLinker() as fake:
        fake.add_many((str(n), f"S-{n}", n % 7, 1.5) for n in range(1, 2501))
        sizes = [len(stock_page(fake, page)["products"]) for page in (1, 2, 3, 4)]
        assert sizes == [1000, 1000, 500, 0]
        first = stock_page(fake, 1)["products"]["3"]
        assert first == {"product_id": "3", "stock": {"bl_1": 3}, "reservations": {}, "variants": {}}
        prices = call(fake, "getInventoryProductsPrices", inventory_id=7, page=3).json()["products"]
        assert len(prices) == 500 and prices["2001"]["prices"] == {"11": 1.5}


def test_an_update_of_more_than_1000_products_is_refused_whole():
    with FakeBaseLinker() as fake:
        fake.add_many((str(n), f"S-{n}", 0, 1.0) for n in range(1, 1002))
        too_many = {str(n): {"bl_1": 5} for n in range(1, 1002)}
        answer = call(fake, "updateInventoryProductsStock", inventory_id=7, products=too_many).json()
        assert (answer["status"], answer["error_code"]) == ("ERROR", "ERROR_PRODUCTS_LIMIT")
        assert fake.stock("1") == 0
        del too_many["1001"]
        assert call(fake, "updateInventoryProductsStock", inventory_id=7, products=too_many).json()["counter"] == 1000


def test_an_update_answers_warnings_per_product_and_applies_the_rest():
    with FakeBaseLinker() as fake:
        fake.add(pid="1", sku="A")
        fake.add(pid="2", sku="B")
        answer = call(fake, "updateInventoryProductsStock", inventory_id=7,
                      products={"1": {"bl_1": 4}, "2": {"bl_1": -1}, "9": {"bl_1": 1}}).json()
        assert answer == {"status": "SUCCESS", "counter": 1,
                          "warnings": {"2": "invalid stock -1", "9": "Product not found"}}
        assert (fake.stock("1"), fake.stock("2")) == (4, 0)


def test_get_orders_returns_at_most_100_from_date_confirmed_from():
    with FakeBaseLinker() as fake:
        for n in range(250):
            fake.add_order(order_id=1000 + n, date_confirmed=1_700_000_000 + n // 2)  # two per second
        first = call(fake, "getOrders", date_confirmed_from=0).json()["orders"]
        assert len(first) == 100
        nxt = call(fake, "getOrders", date_confirmed_from=first[-1]["date_confirmed"] + 1).json()["orders"]
        assert (len(nxt), nxt[0]["order_id"]) == (100, 1100)
        rest = call(fake, "getOrders", date_confirmed_from=nxt[-1]["date_confirmed"] + 1).json()["orders"]
        assert (len(rest), rest[-1]["order_id"]) == (50, 1249)


@pytest.mark.parametrize("http_status", [200, 503])
def test_the_json_status_not_the_http_status_says_what_happened(http_status):
    with FakeBaseLinker(http_status=http_status) as fake:
        bad = call(fake, "getInventoryProductsStock", token="wrong", inventory_id=7, page=1)
        good = call(fake, "getInventoryProductsStock", inventory_id=7, page=1)
        assert bad.status_code == good.status_code == http_status
        assert (bad.json()["status"], bad.json()["error_code"], good.json()["status"]) == (
            "ERROR", "ERROR_BAD_TOKEN", "SUCCESS")
