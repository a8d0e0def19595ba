"""Issue 11, the data migration for real: a database at carts 0004 holding a
store with plain credentials is migrated by `manage.py migrate` in a child
process (production settings, its own database); afterwards the row holds
only ciphertext and a connector built by that process still authenticates
against the fake Shopify over HTTP. Migrating back restores the plain values."""
from __future__ import annotations

import json

from cryptography.fernet import Fernet

from tests.fakes.shopify import LOCATION, FakeShopify
from tests.support.processes import create_database, database_url, drop_database, manage, process_env

KEY = Fernet.generate_key().decode()

OLD_STORE = """
from django.db import connection
from django.db.migrations.loader import MigrationLoader
apps = MigrationLoader(connection).project_state(("carts", "0004_externalstore_direct_source")).apps
apps.get_model("carts", "ExternalStore").objects.create(
    code="shop", name="Shop", platform="shopify", url={url!r},
    params={{"location_id": {location!r}, "webhook_secret": "whsec"}}, secrets={{"access_token": {token!r}}})
"""

READ = """
import json
from django.db import connection
from carts.models import ExternalStore
from carts.services.stores import store_connector
with connection.cursor() as cursor:
    cursor.execute("SELECT CAST(secrets AS TEXT), CAST(params AS TEXT) FROM carts_externalstore")
    secrets, params = cursor.fetchone()
out = {"secrets": json.loads(secrets), "params": json.loads(params)}
if CONNECT:
    connector = store_connector(store=ExternalStore.objects.get(code="shop"))
    out["skus"] = [p.sku for p in connector.list_products()]
    out["webhook_secret"] = connector.values["webhook_secret"]
print("OUT=" + json.dumps(out))
"""


def _read(env: dict, *, connect: bool) -> dict:
    printed = manage("shell", "-c", f"CONNECT = {connect!r}\n" + READ, env=env).stdout
    return json.loads(printed.split("OUT=", 1)[1])


def test_migrate_encrypts_a_plain_store_which_still_authenticates_and_migrating_back_restores_it(db):
    url = database_url("secmig")
    create_database(url)
    env = process_env(database=url, redis=False, POSINV_SECRET_KEY_ENCRYPTION=KEY)
    try:
        with FakeShopify(token="shpat_live_4c1d") as shopify:
            shopify.add_variant(sku="A-1")
            manage("migrate", "carts", "0004_externalstore_direct_source", "--noinput", env=env)
            manage("shell", "-c", OLD_STORE.format(url=shopify.url, location=LOCATION, token=shopify.token),
                   env=env)
            assert _read(env, connect=False)["secrets"] == {"access_token": "shpat_live_4c1d"}

            manage("migrate", "carts", "--noinput", env=env)
            after = _read(env, connect=True)
            assert sorted(after["secrets"]) == ["access_token", "webhook_secret"]
            assert all(value.startswith("enc:v1:") for value in after["secrets"].values())
            stored = json.dumps([after["secrets"], after["params"]])
            assert "shpat_live_4c1d" not in stored and "whsec" not in stored
            assert after["params"] == {"location_id": LOCATION}
            assert (after["skus"], after["webhook_secret"]) == (["A-1"], "whsec")

            manage("migrate", "carts", "0004_externalstore_direct_source", "--noinput", env=env)
            assert _read(env, connect=False)["secrets"] == {"access_token": "shpat_live_4c1d",
                                                             "webhook_secret": "whsec"}
    finally:
        drop_database(url)
