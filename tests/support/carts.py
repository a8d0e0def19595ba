"""The cart-worker world of the end-to-end cart tests: stores on fake carts
(real HTTP on 127.0.0.1), their products matched by SKU, real `rqworker`
processes and the scheduler on the test's PostgreSQL database and Redis, and
the checks that every cart shows exactly the ledger's available-to-sell.

    carts = [Cart(shopify_store(fake, code="shop", locations=[web]), fake), ...]
    carts_link(carts, skus=SKUS)
    with cart_workers(env=cart_worker_env(), prefix="flt") as workers: ...
    wait_until(lambda: carts_match(carts, SKUS), ...)
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from django.db import connection

from carts.models import CartSettings, ExternalStore, StackEntry
from carts.services.links import links_match
from carts.services.stores import store_available
from posinv.models import Article, StockChange
from tests.fakes.cartbase import FakeServer
from tests.fakes.shopify import LOCATION, FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.support.processes import Child, process_env, started_command, started_worker

SKUS = [f"E-{n:02}" for n in range(20)]


@dataclass(frozen=True)
class Cart:
    """A store row and the fake cart behind it."""

    store: ExternalStore
    fake: FakeServer

    def remote(self, sku: str) -> int | None:
        """What the cart's storefront sells of `sku` now."""
        if isinstance(self.fake, FakeShopify):
            return self.fake.available(sku)
        if isinstance(self.fake, FakeWooCommerce):
            return self.fake.stock(sku)
        raise TypeError(f"no reader for {type(self.fake).__name__}")


def worker_database_url() -> str:
    """DATABASE_URL of the test's own database, for the child processes."""
    s = connection.settings_dict
    host = f"{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}"
    return f"postgres://{s.get('USER') or 'postgres'}@{host}/{s['NAME']}"


def shopify_store(fake: FakeShopify, *, code: str, locations: Iterable) -> ExternalStore:
    store = ExternalStore.objects.create(code=code, name=f"Shopify {code}", platform="shopify", url=fake.url,
                                         sync_inventory=True, params={"location_id": LOCATION},
                                         secrets={"access_token": fake.token})
    store.locations.add(*locations)
    return store


def woo_store(fake: FakeWooCommerce, *, code: str, locations: Iterable) -> ExternalStore:
    store = ExternalStore.objects.create(code=code, name=f"Woo {code}", platform="woocommerce", url=fake.url,
                                         sync_inventory=True, secrets={"consumer_key": fake.key,
                                                                       "consumer_secret": fake.secret})
    store.locations.add(*locations)
    return store


def carts_link(carts: Iterable[Cart], *, skus: list[str]) -> None:
    """Match every cart's products to our articles by SKU; all of `skus` must match."""
    for cart in carts:
        matched = links_match(store=cart.store)["counts"]["matched"]
        assert matched == len(skus), f"{cart.store.code}: {matched} of {len(skus)} products matched"


def cart_worker_env(**extra: str) -> dict[str, str]:
    """Environment of the workers and the scheduler: the test's database and Redis."""
    return process_env(database=worker_database_url(), **extra)


@contextmanager
def cart_workers(*, env: dict[str, str], prefix: str, count: int = 2) -> Iterator[list[Child]]:
    """`count` real rqworker processes and one scheduler; yields the workers."""
    with ExitStack() as stack:
        workers = [stack.enter_context(started_worker(env=env, name=f"{prefix}-w{n}")) for n in range(1, count + 1)]
        stack.enter_context(started_command("run_scheduler", env=env, name=f"{prefix}-scheduler"))
        yield workers


def mismatches(carts: Iterable[Cart], skus: list[str]) -> list[tuple[str, str, int | None, int]]:
    """(store, sku, the cart's figure, ours) wherever a cart differs from our available-to-sell."""
    ids = dict(Article.objects.filter(sku__in=skus).values_list("sku", "pk"))
    wrong = []
    for cart in carts:
        ours = store_available(store=cart.store, article_ids=ids.values())
        for sku, pk in sorted(ids.items()):
            if cart.remote(sku) != ours[pk]:
                wrong.append((cart.store.code, sku, cart.remote(sku), ours[pk]))
    return wrong


def stack_settled() -> bool:
    """No change waits in the outbox and no stack entry is waiting or being sent."""
    return not (StockChange.objects.exists()
                or StackEntry.objects.filter(state__in=["waiting", "sending"]).exists())


def carts_match(carts: Iterable[Cart], skus: list[str]) -> bool:
    """Everything has been sent and every cart shows exactly our figure."""
    return stack_settled() and mismatches(carts, skus) == []


def attempts_within(seconds: float, params: CartSettings, *, call_seconds: float = 0.0) -> int:
    """The most requests the stack controller can send about one product to a
    cart that fails every call for `seconds`, from the settings alone: attempt
    n+1 comes no sooner than the call's own duration (`call_seconds`, e.g. the
    connector's timeout) plus the shortest backoff, 0.5 × min(cap, base ×
    2^(n−1)) (the jitter's low end); after `max_attempts` the entries are
    given up and, in the worst case, a sale queues the product again at once."""
    elapsed, attempts, calls = 0.0, 0, 0
    while elapsed < seconds:
        calls += 1
        attempts += 1
        elapsed += call_seconds
        if attempts >= params.max_attempts:
            attempts = 0
            continue
        elapsed += 0.5 * min(params.backoff_cap_seconds, params.backoff_base_seconds * 2 ** (attempts - 1))
    return calls


def longest_backoff(params: CartSettings) -> float:
    """The longest wait an entry can have before its next attempt: the last
    backoff before it is given up (attempt max_attempts − 1), capped, at the
    jitter's high end (× 1.5)."""
    return 1.5 * min(params.backoff_cap_seconds, params.backoff_base_seconds * 2 ** (params.max_attempts - 2))
