"""Fixtures of the carts tests: fake platforms on real HTTP, stores linked to
them, and helpers to post stock through the ledger as registers do."""
from __future__ import annotations

from decimal import Decimal

import pytest

from carts.models import CartSettings, ExternalStore
from carts.ratelimit import budgets_reset
from carts.services.links import links_match
from posinv.services.changes import changes_dispatch
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location
from tests.fakes.shopify import LOCATION, FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce

REGISTER = StockOrigin("register", "R1")


@pytest.fixture(autouse=True)
def _fresh_budgets():
    budgets_reset()
    yield
    budgets_reset()


@pytest.fixture
def sync_on(db):
    """SynchQOH on, with quick backoff so tests do not wait."""
    return CartSettings.objects.create(pk=1, synch_qoh=True, max_attempts=3, backoff_base_seconds=0.05,
                                       backoff_cap_seconds=0.2, claim_seconds=5)


@pytest.fixture
def shopify():
    # A shop on a larger plan (bucket 1,000, restoring 1,000 points a second)
    # so that tests about other things do not wait for the bucket; the
    # documented 50/s is the fake's default, used by the pacing tests.
    with FakeShopify(restore_rate=1000) as fake:
        yield fake


@pytest.fixture
def woo():
    with FakeWooCommerce() as fake:
        yield fake


@pytest.fixture
def shop_location(db):
    return make_location(code="WEB", name="Web warehouse", kind="warehouse")


def make_shopify_store(fake: FakeShopify, *, location, code: str = "shopify", **extra) -> ExternalStore:
    store = ExternalStore.objects.create(
        code=code, name=code, platform="shopify", url=fake.url, sync_inventory=True,
        params={"location_id": LOCATION}, secrets={"access_token": fake.token, "webhook_secret": "whsec"}, **extra)
    store.locations.add(location)
    return store


def make_woo_store(fake: FakeWooCommerce, *, location, code: str = "woo", **extra) -> ExternalStore:
    store = ExternalStore.objects.create(
        code=code, name=code, platform="woocommerce", url=fake.url, sync_inventory=True,
        secrets={"consumer_key": fake.key, "consumer_secret": fake.secret, "webhook_secret": "wcsec"}, **extra)
    store.locations.add(location)
    return store


def articles(*skus: str):
    return [make_article(sku=sku) for sku in skus]


def post(sku: str, location, *, quantity=None, counted=None, key: str, kind: str = "sale",
         origin: StockOrigin = REGISTER):
    """Post one move as a register or cabinet would, then run the outbox dispatcher."""
    spec = MoveSpec(kind=kind, idempotency_key=key, sku=sku, location_id=location.pk,
                    quantity=None if quantity is None else Decimal(quantity),
                    counted=None if counted is None else Decimal(counted))
    result = stock_moves_post(moves=[spec], origin=origin)
    changes_dispatch()
    return result


def receive(sku: str, location, quantity: int, *, key: str | None = None):
    return post(sku, location, kind="receipt", quantity=quantity, key=key or f"rcv:{sku}:{quantity}",
                origin=StockOrigin("user", "clerk"))


def link_all(store: ExternalStore) -> dict:
    return links_match(store=store)
