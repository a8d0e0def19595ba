"""Issue 11: store credentials encrypted at rest. The row (read with raw SQL)
never holds a plain secret; the connector, the one place that decrypts,
still authenticates against the fake platforms after an admin save, after
the data migration and after a key rotation; a wrong or missing key gives an
error naming the store, never the ciphertext or a key."""
from __future__ import annotations

import importlib
import json
import logging
from io import StringIO
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from carts.models import ExternalStore, ProductLink, StackEntry
from carts.services.stack import stack_sweep
from carts.services.stores import StoreSecretsUnreadable, store_connector
from posinv.crypto import ENV_KEYS
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, receive
from tests.fakes.shopify import LOCATION

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
# The data steps only use the editor's connection; a real schema editor cannot
# open inside the test's transaction on SQLite.
EDITOR = SimpleNamespace(connection=connection)
MIGRATION = importlib.import_module("carts.migrations.0005_secrets_encrypted")


def _raw(store_pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(secrets AS TEXT) FROM carts_externalstore WHERE id = %s", [store_pk])
        return cursor.fetchone()[0]


def _raw_params(store_pk: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(params AS TEXT) FROM carts_externalstore WHERE id = %s", [store_pk])
        return json.loads(cursor.fetchone()[0])


def _write_plain(store_pk: int, *, secrets: dict, params: dict) -> None:
    """A row as it was before issue 11: plain JSON written by SQL, past the model field."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE carts_externalstore SET secrets = %s, params = %s WHERE id = %s",
                       [json.dumps(secrets), json.dumps(params), store_pk])


def _historical_apps(target: str):
    return MigrationLoader(connection).project_state(("carts", target)).apps


def _authenticates(store: ExternalStore) -> bool:
    """A real GraphQL call to the fake Shopify, which answers 401 to a wrong token."""
    return list(store_connector(store=store).list_products()) is not None


def test_a_created_store_keeps_only_ciphertext_and_its_connector_still_authenticates(
        monkeypatch, shopify, shop_location):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    articles("A-1")
    shopify.add_variant(sku="A-1")
    store = make_shopify_store(shopify, location=shop_location)
    raw = _raw(store.pk)
    stored = json.loads(raw)
    assert shopify.token not in raw and "whsec" not in raw
    assert sorted(stored) == ["access_token", "webhook_secret"]
    assert all(value.startswith("enc:v1:") for value in stored.values())
    # the instance in memory holds the ciphertext too, not the value it was given
    assert store.secrets == stored
    assert [p.sku for p in store_connector(store=store).list_products()] == ["A-1"]


def test_a_secret_entered_in_the_admin_is_stored_encrypted_and_used_by_the_connector(
        monkeypatch, sync_on, shopify, shop_location, client, staff_user):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    store = ExternalStore.objects.create(code="shop", name="Shop", platform="shopify", url=shopify.url,
                                         params={"location_id": LOCATION}, secrets={"access_token": "shpat_old"})
    client.force_login(staff_user)
    form = {"code": "shop", "name": "Shop", "kind": "cart", "platform": "shopify", "url": shopify.url,
            "params": json.dumps({"location_id": LOCATION}), "locations": [shop_location.pk], "safety_buffer": "0",
            "order_interval_seconds": "60", "order_cursor": "{}", "active": "on",
            "stock_direction": "none", "stock_interval_seconds": "900", "zero_hold_share": "0.5",
            "price_direction": "none", "price_interval_seconds": "3600", "price_hold_share": "0.5",
            "price_cut_share": "0.5",
            "secret__shopify__access_token": shopify.token, "secret__shopify__webhook_secret": ""}
    with pytest.raises(Exception, match="401"):
        _authenticates(store)
    answer = client.post(f"/admin/carts/externalstore/{store.pk}/change/", form)
    assert answer.status_code == 302
    raw = _raw(store.pk)
    assert shopify.token not in raw and "shpat_old" not in raw
    assert sorted(json.loads(raw)) == ["access_token"]  # the blank webhook box set nothing
    store.refresh_from_db()
    assert _authenticates(store)
    page = client.get(f"/admin/carts/externalstore/{store.pk}/change/").content.decode()
    assert shopify.token not in page and raw.split('"')[3] not in page
    assert "access_token: set, webhook_secret: not set" in page


def test_the_data_migration_encrypts_plain_rows_once_and_moves_secret_params(
        monkeypatch, shopify, woo, shop_location):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    shop = make_shopify_store(shopify, location=shop_location)
    wc = make_woo_store(woo, location=shop_location)
    _write_plain(shop.pk, secrets={"access_token": shopify.token}, params={"location_id": LOCATION,
                                                                          "webhook_secret": "whsec"})
    _write_plain(wc.pk, secrets={"consumer_key": woo.key, "consumer_secret": woo.secret}, params={})
    apps = _historical_apps("0004_externalstore_direct_source")
    MIGRATION.secrets_encrypt_existing(apps, EDITOR)
    first = {pk: _raw(pk) for pk in (shop.pk, wc.pk)}
    assert shopify.token not in first[shop.pk] and "whsec" not in first[shop.pk]
    assert woo.key not in first[wc.pk] and woo.secret not in first[wc.pk]
    assert sorted(json.loads(first[shop.pk])) == ["access_token", "webhook_secret"]
    assert _raw_params(shop.pk) == {"location_id": LOCATION}
    # a second run changes nothing (the ciphertext is byte-identical)
    MIGRATION.secrets_encrypt_existing(apps, EDITOR)
    assert {pk: _raw(pk) for pk in (shop.pk, wc.pk)} == first
    shop.refresh_from_db()
    wc.refresh_from_db()
    assert _authenticates(shop)
    assert store_connector(store=shop).values["webhook_secret"] == "whsec"
    assert store_connector(store=wc).values["consumer_secret"] == woo.secret


def test_migrating_back_writes_the_plain_secrets_the_old_code_reads(monkeypatch, shopify, shop_location):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    shop = make_shopify_store(shopify, location=shop_location)
    apps = _historical_apps("0004_externalstore_direct_source")
    MIGRATION.secrets_decrypt_existing(apps, EDITOR)
    assert json.loads(_raw(shop.pk)) == {"access_token": shopify.token, "webhook_secret": "whsec"}


def test_rotation_keeps_old_ciphertext_readable_and_rewrites_it_under_the_first_key(
        monkeypatch, shopify, woo, shop_location):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    shop = make_shopify_store(shopify, location=shop_location)
    wc = make_woo_store(woo, location=shop_location)
    before = _raw(shop.pk)
    monkeypatch.setenv(ENV_KEYS, f"{KEY_B},{KEY_A}")
    assert _authenticates(shop)  # the old key still opens what it encrypted
    out = StringIO()
    call_command("carts_rotate_secrets", stdout=out)
    assert out.getvalue().splitlines() == [
        "[1/2] shopify: 2 secrets re-encrypted",
        "[2/2] woo: 3 secrets re-encrypted",
        "2 of 2 stores re-encrypted, 5 secrets in all",
    ]
    after = _raw(shop.pk)
    assert after != before and shopify.token not in after
    monkeypatch.setenv(ENV_KEYS, KEY_B)  # the old key retired
    shop.refresh_from_db()
    wc.refresh_from_db()
    assert _authenticates(shop)
    assert store_connector(store=wc).values["consumer_key"] == woo.key


@pytest.mark.parametrize("later", [KEY_B, None], ids=["wrong key", "missing key"])
def test_a_wrong_or_missing_key_names_the_store_and_leaks_nothing(
        monkeypatch, caplog, shopify, shop_location, later):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    shop = make_shopify_store(shopify, location=shop_location)
    before = _raw(shop.pk)
    if later is None:
        monkeypatch.delenv(ENV_KEYS)  # falls back to the key derived from SECRET_KEY
    else:
        monkeypatch.setenv(ENV_KEYS, later)
    with pytest.raises(StoreSecretsUnreadable) as caught:
        store_connector(store=shop)
    message = str(caught.value)
    assert message == (
        "store shopify: secret access_token cannot be decrypted with the keys in POSINV_SECRET_KEY_ENCRYPTION "
        "(wrong or missing key); put back the key that encrypted it or enter the secret again in the admin")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    # rotation refuses too, exits non-zero with the store, and leaves the row as it was
    out, err = StringIO(), StringIO()
    with caplog.at_level(logging.DEBUG), pytest.raises(CommandError) as failed:
        call_command("carts_rotate_secrets", stdout=out, stderr=err)
    assert str(failed.value) == "1 stores could not be re-encrypted (left as they were): shopify"
    assert err.getvalue().startswith("[1/1] store shopify: secret access_token cannot be decrypted")
    assert _raw(shop.pk) == before
    seen = message + out.getvalue() + err.getvalue() + str(failed.value) + caplog.text
    for leak in (KEY_A, KEY_B, shopify.token, *json.loads(before).values()):
        assert leak not in seen


def test_a_wrong_key_fails_an_admin_action_with_the_store_named(
        monkeypatch, sync_on, shopify, shop_location, client, staff_user):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    shop = make_shopify_store(shopify, location=shop_location)
    monkeypatch.setenv(ENV_KEYS, KEY_B)
    client.force_login(staff_user)
    page = client.post("/admin/carts/externalstore/", {"action": "match_products", "_selected_action": [shop.pk]},
                       follow=True)
    body = page.content.decode()
    assert ("Shopify: matching failed: store shopify: secret access_token cannot be decrypted with the keys in "
            "POSINV_SECRET_KEY_ENCRYPTION") in body
    assert KEY_A not in body and KEY_B not in body and json.loads(_raw(shop.pk))["access_token"] not in body
    assert shop.links.count() == 0


def test_a_wrong_key_stops_a_sweep_before_it_claims_so_the_entries_keep_waiting(
        monkeypatch, sync_on, shopify, shop_location):
    monkeypatch.setenv(ENV_KEYS, KEY_A)
    articles("A-1")
    shopify.add_variant(sku="A-1", available=0)
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    monkeypatch.setenv(ENV_KEYS, KEY_B)
    receive("A-1", shop_location, 3)
    with pytest.raises(StoreSecretsUnreadable, match="^store shopify: secret access_token cannot be decrypted"):
        stack_sweep(store_id=shop.pk, time_budget=2)
    assert list(StackEntry.objects.values_list("quantity", "state", "attempts")) == [(3, "waiting", 0)]
    assert ProductLink.objects.get().claim_token == ""
    assert shopify.available("A-1") == 0
    monkeypatch.setenv(ENV_KEYS, f"{KEY_B},{KEY_A}")  # the key put back: the same entry goes out
    stack_sweep(store_id=shop.pk, time_budget=2)
    assert list(StackEntry.objects.values_list("sent_quantity", "state")) == [(3, "sent")]
    assert shopify.available("A-1") == 3
