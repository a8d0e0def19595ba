"""The carts admin: state at a glance without N+1 queries, secrets never
shown back, actions that call the services."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carts.models import ExternalStore, ImportedOrder, StackEntry
from carts.services.stores import store_connector
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, receive

TABS = {"stock_direction": "none", "stock_interval_seconds": "900", "zero_hold_share": "0.5",
        "price_direction": "none", "price_interval_seconds": "3600", "price_hold_share": "0.5",
        "price_cut_share": "0.5"}


def _raw_secrets(store_pk: int) -> str:
    """The secrets column as the database holds it (raw SQL, no model field in between)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(secrets AS TEXT) FROM carts_externalstore WHERE id = %s", [store_pk])
        return cursor.fetchone()[0]


def _admin(client, staff_user):
    client.force_login(staff_user)
    return client


def test_store_list_shows_links_and_waiting_entries_in_a_fixed_number_of_queries(
        sync_on, woo, shop_location, client, staff_user):
    client = _admin(client, staff_user)
    articles("A-1", "B-2")
    woo.add_product(sku="A-1")
    woo.add_product(sku="B-2")
    for code in ("w1", "w2", "w3"):
        link_all(make_woo_store(woo, location=shop_location, code=code))
    woo.throttle_for(60)
    receive("A-1", shop_location, 3)
    with CaptureQueriesContext(connection) as few:
        page = client.get("/admin/carts/externalstore/")
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('<td class="field-links_count">2</td>') == 3
    assert body.count('<td class="field-waiting_count">1</td>') == 3
    woo.throttle_for(0)
    link_all(make_woo_store(woo, location=shop_location, code="w4"))
    with CaptureQueriesContext(connection) as more:
        client.get("/admin/carts/externalstore/")
    assert len(more.captured_queries) == len(few.captured_queries)


def test_secrets_are_write_only_in_the_store_form(sync_on, shopify, shop_location, client, staff_user):
    client = _admin(client, staff_user)
    store = make_shopify_store(shopify, location=shop_location)
    stored_before = _raw_secrets(store.pk)
    page = client.get(f"/admin/carts/externalstore/{store.pk}/change/").content.decode()
    assert shopify.token not in page and "whsec" not in page
    assert "access_token: set, webhook_secret: set" in page
    # saving with the secret boxes blank keeps the secrets
    form = {"code": "shopify", "name": "Shop", "kind": "cart", "platform": "shopify", "url": shopify.url,
            "params": '{"location_id": "gid://shopify/Location/1"}', "locations": [shop_location.pk],
            "safety_buffer": "1", "sync_inventory": "on", "order_interval_seconds": "60", "order_cursor": "{}",
            "active": "on", "secret__shopify__access_token": "", **TABS}
    answer = client.post(f"/admin/carts/externalstore/{store.pk}/change/", form)
    assert answer.status_code == 302
    store.refresh_from_db()
    # the stored ciphertext is untouched and still opens to the token the fake accepts
    assert (store.name, _raw_secrets(store.pk)) == ("Shop", stored_before)
    assert list(store_connector(store=store).list_products()) == []


def test_adding_a_store_without_its_required_parameters_is_refused_with_the_field(
        sync_on, shop_location, client, staff_user):
    client = _admin(client, staff_user)
    form = {"code": "wc", "name": "Woo", "kind": "cart", "platform": "woocommerce", "url": "https://shop.example",
            "params": "{}", "locations": [shop_location.pk], "safety_buffer": "0", "order_interval_seconds": "60",
            "order_cursor": "{}", "active": "on", "secret__woocommerce__consumer_key": "ck_1", **TABS}
    page = client.post("/admin/carts/externalstore/add/", form)
    assert page.status_code == 200
    assert "consumer_secret: required by WooCommerce (REST v3)" in page.content.decode()
    assert ExternalStore.objects.count() == 0
    form["secret__woocommerce__consumer_secret"] = "cs_1"
    assert client.post("/admin/carts/externalstore/add/", form).status_code == 302
    stored = _raw_secrets(ExternalStore.objects.get().pk)
    assert "ck_1" not in stored and "cs_1" not in stored
    assert store_connector(store=ExternalStore.objects.get()).values["consumer_secret"] == "cs_1"


def test_stack_admin_filters_and_retries_failed_entries(sync_on, woo, shop_location, client, staff_user):
    client = _admin(client, staff_user)
    articles("A-1")
    woo.add_product(sku="A-1")
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    receive("A-1", shop_location, 3)
    entry = StackEntry.objects.get()
    StackEntry.objects.filter(pk=entry.pk).update(state="failed", attempts=3, last_response="HTTP 503: down")
    page = client.get("/admin/carts/stackentry/?state__exact=failed").content.decode()
    assert "HTTP 503: down" in page and '<td class="field-attempts">3</td>' in page
    answer = client.post("/admin/carts/stackentry/", {"action": "retry", "_selected_action": [entry.pk]})
    assert answer.status_code == 302
    entry.refresh_from_db()
    assert (entry.state, entry.attempts) == ("waiting", 0)


def test_store_actions_match_products_and_show_the_reconcile_report(
        sync_on, woo, shop_location, client, staff_user):
    client = _admin(client, staff_user)
    articles("A-1")
    woo.add_product(sku="A-1", stock=5)
    wc = make_woo_store(woo, location=shop_location)
    answer = client.post("/admin/carts/externalstore/", {"action": "match_products", "_selected_action": [wc.pk]},
                         follow=True)
    assert "Woo: matched 1, missing here 0, missing on the store 0, ambiguous 0" in answer.content.decode()
    page = client.post("/admin/carts/externalstore/", {"action": "reconcile", "_selected_action": [wc.pk]})
    body = page.content.decode()
    assert page.status_code == 200
    assert "<td>A-1</td>" in body and "<td>0</td><td>5</td><td>5</td>" in body


def test_imported_orders_list_counts_lines_waiting_for_an_article(sync_on, woo, shop_location, client, staff_user):
    client = _admin(client, staff_user)
    woo.add_product(sku="GHOST")
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    woo.place_order(lines=[("GHOST", 1)])
    from carts.services.orders import orders_import
    orders_import(store=wc)
    assert ImportedOrder.objects.count() == 1
    page = client.get("/admin/carts/importedorder/").content.decode()
    assert '<td class="field-waiting_lines">1</td>' in page


def test_synchronize_inventory_is_not_offered_where_the_platform_cannot_take_quantities(
        sync_on, shop_location, client, staff_user):
    from carts.connectors import base
    from carts.services.stores import store_validate
    from posinv.exceptions import InvalidInput

    @base.register
    class FeedOnly(base.Connector):
        platform = "feedonly"
        label = "Read-only feed"
        params = (base.Param("token", "Token", secret=True),)
        supports_inventory_sync = False

    try:
        client = _admin(client, staff_user)
        store = ExternalStore.objects.create(code="feed", name="Feed", platform="feedonly",
                                             url="https://feed.example", secrets={"token": "t"})
        store.locations.add(shop_location)
        page = client.get(f"/admin/carts/externalstore/{store.pk}/change/").content.decode()
        assert 'name="sync_inventory"' not in page and 'name="import_orders"' in page
        store.sync_inventory = True
        with pytest.raises(InvalidInput) as refused:
            store_validate(store=store)
        assert [p.as_dict() for p in refused.value.problems] == [
            {"code": "invalid", "field": "sync_inventory", "reason": "Read-only feed does not support inventory sync"}]
    finally:
        base._REGISTRY.pop("feedonly", None)


def test_every_carts_admin_page_opens(sync_on, woo, shop_location, client, staff_user):
    client = _admin(client, staff_user)
    articles("A-1")
    woo.add_product(sku="A-1")
    store = make_woo_store(woo, location=shop_location, import_orders=True)
    link_all(store)
    receive("A-1", shop_location, 1)
    woo.place_order(lines=[("A-1", 1)])
    from carts.services.orders import orders_import
    orders_import(store=store)
    pages = ["externalstore", "externalstore/add", f"externalstore/{store.pk}/change", "stackentry",
             f"stackentry/{StackEntry.objects.first().pk}/change", "importedorder",
             f"importedorder/{ImportedOrder.objects.get().pk}/change", "productlink", "productlink/add",
             "cartsettings", "cartsettings/1/change"]
    assert {page: client.get(f"/admin/carts/{page}/").status_code for page in pages} == dict.fromkeys(pages, 200)
