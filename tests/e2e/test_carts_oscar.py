"""End to end against a real django-oscar + django-oscar-api shop on
127.0.0.1 (../shared/oscar-peer): posinv pushes quantities that the shop's
storefront then shows, and imports an order placed through the shop's
checkout API. CI builds and starts the shop (.ci/run) and sets
OSCARPEER_URL; locally the fixture starts an already built shop
(OSCARPEER_DIR, default /tmp/oscarpeer) on a free port, or skips."""
from __future__ import annotations

import os
import secrets
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from carts.models import ExternalStore, ImportedOrder
from carts.services.links import links_match
from carts.services.orders import orders_import
from carts.services.qoh import qoh_reconcile
from carts.services.stack import stack_sweep
from posinv.models import StockLevel
from posinv.services.changes import changes_dispatch
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.conftest import IN_CI
from tests.factories import make_article, make_location
from tests.support.processes import REPO, free_port

pytestmark = [pytest.mark.oscar_peer, pytest.mark.e2e]

SETUP = Path(os.environ.get("OSCARPEER_SETUP", REPO.parent / "shared" / "oscar-peer" / "setup.sh"))


def _script(command: str, env: dict) -> None:
    # A clean environment: our DJANGO_SETTINGS_MODULE must not leak into the shop.
    clean = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    result = subprocess.run(["bash", str(SETUP), command], env={**clean, **env}, capture_output=True,
                            text=True, timeout=180)
    if result.returncode != 0:
        raise AssertionError(f"oscar-peer {command} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def oscar_url():
    """A freshly reset shop: CI's, or one started here from a built OSCARPEER_DIR."""
    directory = os.environ.get("OSCARPEER_DIR", "/tmp/oscarpeer")
    if os.environ.get("OSCARPEER_URL"):
        _script("reset", {"OSCARPEER_DIR": directory, "OSCARPEER_PORT": os.environ.get("OSCARPEER_PORT", "8765")})
        yield os.environ["OSCARPEER_URL"].rstrip("/")
        return
    if not (Path(directory) / "venv" / "bin" / "python").exists() or not SETUP.exists():
        reason = f"no oscar peer: run {SETUP} (OSCARPEER_DIR={directory}) or set OSCARPEER_URL"
        if IN_CI:
            pytest.fail(f"CI must not skip: {reason}")
        pytest.skip(reason)
    env = {"OSCARPEER_DIR": directory, "OSCARPEER_PORT": str(free_port())}
    _script("stop", env)
    _script("reset", env)
    _script("start", env)
    try:
        yield f"http://127.0.0.1:{env['OSCARPEER_PORT']}"
    finally:
        _script("stop", env)


def _availability(url: str) -> dict:
    return requests.get(f"{url}/api/products/1/availability/", timeout=10).json()


def _checkout(url: str, quantity: int) -> dict:
    """A guest order through the storefront API, as a shopper's browser would."""
    session = requests.Session()
    session.headers["Session-Id"] = f"SID:ANON:127.0.0.1:{secrets.token_hex(8)}"
    basket = session.get(f"{url}/api/basket/", timeout=10).json()
    added = session.post(f"{url}/api/basket/add-product/", json={"url": f"{url}/api/products/1/",
                                                                  "quantity": quantity}, timeout=10)
    assert added.status_code == 200, added.text
    order = session.post(f"{url}/api/checkout/", timeout=20, json={
        "basket": basket["url"], "guest_email": "guest@example.com", "shipping_method_code": "free-shipping",
        "shipping_address": {"country": f"{url}/api/countries/NL/", "first_name": "Ada", "last_name": "Tester",
                             "line1": "Teststraat 1", "line4": "Utrecht", "postcode": "1234 AB",
                             "phone_number": "+31 20 123 4567"}})
    assert order.status_code == 200, order.text
    return order.json()


def test_the_oscar_storefront_shows_pushed_quantities_and_its_orders_come_back_as_sales(
        oscar_url, db, settings):
    # given the seeded product linked by its partner SKU, 25 on hand, a buffer of 2
    from carts.models import CartSettings

    CartSettings.objects.create(pk=1, synch_qoh=True)
    web = make_location(code="WEB", kind="warehouse")
    make_article(sku="SKU-0001", name="Seed Widget")
    store = ExternalStore.objects.create(code="oscar", name="Oscar", platform="oscar", url=oscar_url,
                                         params={"username": "posinv"}, secrets={"password": "posinv-pass"},
                                         sync_inventory=True, import_orders=True, safety_buffer=2)
    store.locations.add(web)
    report = links_match(store=store)
    assert report["matched"] == [{"sku": "SKU-0001", "ref": "1", "by": "sku"}]
    stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key="po-1", sku="SKU-0001", location_id=web.pk,
                                     quantity=Decimal(25))], origin=StockOrigin("user", "clerk"))
    changes_dispatch()
    # when the stack controller runs
    stack_sweep(store_id=store.pk)
    # then the storefront offers 25 - 2
    assert _availability(oscar_url) == {"is_available_to_buy": True, "num_available": 23,
                                        "message": "In stock (23 available)"}
    # when a shopper checks out 3 on the shop and posinv imports its orders
    placed = _checkout(oscar_url, 3)
    result = orders_import(store=store)
    assert result.orders == 1 and result.failures == []
    order = ImportedOrder.objects.get()
    assert (order.number, order.status) == (placed["number"], "open")
    assert list(order.lines.values_list("sku", "quantity", "state")) == [("SKU-0001", Decimal("3.000"), "posted")]
    assert StockLevel.objects.get(location=web).on_hand == Decimal(22)
    # importing again moves nothing
    orders_import(store=store)
    assert StockLevel.objects.get(location=web).on_hand == Decimal(22)
    # the shop's allocation already shows the sale: 23 - 3
    assert _availability(oscar_url)["num_available"] == 20
    assert qoh_reconcile(store=store) == []
    # when a register sells 5, the storefront follows (allocation kept in mind)
    stock_moves_post(moves=[MoveSpec(kind="sale", idempotency_key="R1:77:1", sku="SKU-0001", location_id=web.pk,
                                     quantity=Decimal(-5))], origin=StockOrigin("register", "R1"))
    changes_dispatch()
    stack_sweep(store_id=store.pk)
    assert _availability(oscar_url)["num_available"] == 15
    record = requests.get(f"{oscar_url}/api/admin/stockrecords/1/", auth=("posinv", "posinv-pass"), timeout=10).json()
    assert (record["num_in_stock"], record["num_allocated"]) == (18, 3)
