"""Cost of credentials at rest (issue 11): building a store's connector with
its secrets decrypted vs the same connector built from plain values (the
baseline, what it cost before), and `carts_rotate_secrets` over many stores.

    .venv/bin/python bench/store_secrets.py [--stores 500]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_d .venv/bin/python bench/store_secrets.py
"""
from __future__ import annotations

import argparse
import os
import time
from io import StringIO

from _setup import django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=500)
    args = parser.parse_args()
    from cryptography.fernet import Fernet

    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    os.environ["POSINV_SECRET_KEY_ENCRYPTION"] = key_a
    vendor = django_for_bench("secrets")
    from django.core.management import call_command

    from carts.connectors.shopify import ShopifyConnector
    from carts.models import ExternalStore
    from carts.services.stores import store_connector

    plain = {n: {"access_token": f"shpat_{n:06d}", "webhook_secret": f"whsec_{n:06d}"} for n in range(args.stores)}
    ExternalStore.objects.bulk_create([
        ExternalStore(code=f"s{n:06d}", name=f"Store {n}", platform="shopify", url=f"https://s{n}.example",
                      params={"location_id": "gid://shopify/Location/1"}, secrets=plain[n])
        for n in range(args.stores)])
    stores = list(ExternalStore.objects.order_by("code"))
    print(f"{os.cpu_count()} cores, {vendor}, {len(stores)} stores with 2 secrets each")

    started = time.perf_counter()
    for n, store in enumerate(stores):
        ShopifyConnector(url=store.url, params=store.params, secrets=plain[n])
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    built = [store_connector(store=store) for store in stores]
    decrypting = time.perf_counter() - started
    assert built[-1].values["access_token"] == plain[len(stores) - 1]["access_token"]
    print(f"connector from plain values (baseline): {baseline / len(stores) * 1e6:.0f} us per store")
    print(f"connector with secrets decrypted:       {decrypting / len(stores) * 1e6:.0f} us per store "
          f"({decrypting / baseline:.2f}x the baseline)")

    os.environ["POSINV_SECRET_KEY_ENCRYPTION"] = f"{key_b},{key_a}"
    started = time.perf_counter()
    call_command("carts_rotate_secrets", stdout=StringIO())
    rotating = time.perf_counter() - started
    os.environ["POSINV_SECRET_KEY_ENCRYPTION"] = key_b
    assert store_connector(store=ExternalStore.objects.get(code=stores[0].code)).values["access_token"] == \
        plain[0]["access_token"]
    print(f"carts_rotate_secrets: {len(stores)} stores in {rotating:.2f} s = {len(stores) / rotating:.0f} stores/s")


if __name__ == "__main__":
    main()
