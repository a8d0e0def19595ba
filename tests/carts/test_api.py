"""The web stack over the API: staff only, filtered, a fixed number of queries."""
from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from carts.models import StackEntry
from tests.carts.conftest import articles, link_all, make_woo_store, receive


def test_the_stack_list_shows_waiting_records_with_attempts_and_last_response(sync_on, woo, shop_location,
                                                                               staff_client, client):
    articles("A-1", "B-2", "C-3")
    for sku in ("A-1", "B-2", "C-3"):
        woo.add_product(sku=sku)
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    receive("A-1", shop_location, 4)
    StackEntry.objects.update(attempts=2, last_response="HTTP 503: busy")
    with CaptureQueriesContext(connection) as one:
        answer = staff_client.get("/api/v1/carts/stack/?store=woo&state=waiting")
    assert answer.status_code == 200
    row = answer.json()["results"][0]
    assert {k: row[k] for k in ("store", "sku", "quantity", "state", "attempts", "last_response")} == {
        "store": "woo", "sku": "A-1", "quantity": 4, "state": "waiting", "attempts": 2,
        "last_response": "HTTP 503: busy"}
    receive("B-2", shop_location, 1)
    receive("C-3", shop_location, 1)
    with CaptureQueriesContext(connection) as three:
        answer = staff_client.get("/api/v1/carts/stack/?store=woo&state=waiting")
    assert [r["sku"] for r in answer.json()["results"]] == ["A-1", "B-2", "C-3"]
    assert len(three.captured_queries) == len(one.captured_queries)
    assert staff_client.get("/api/v1/carts/stack/?state=sent").json()["results"] == []
    assert client.get("/api/v1/carts/stack/").status_code == 401
