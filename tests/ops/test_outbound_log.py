"""One `outbound_call` log line per HTTP request we make (ops/outbound.py):
a Shopify and a WooCommerce push, a cabinet vendor pull, a register node
pull and a node's push to the main system, all over real HTTP to the fakes.
Each line names the system, connector, method, host, path, status (or the
error class of a timeout / refused connection), duration and job run, and
never a credential, even one sent in the URL's query or in a header."""
from __future__ import annotations

import io
import json
import logging
import socket

import pytest
import requests
from rest_framework.test import APIClient

from cabinets.jobs import cabinet_pull_job
from cabinets.models import WeighingCabinet
from cabinets.services.provisioning import cabinet_create
from cabinets.services.pull import PullError, cabinet_pull
from carts.connectors.base import QuantityUpdate, Throttled, UnknownOutcome
from carts.jobs import qoh_send_job
from carts.models import StackEntry
from carts.services.stores import store_connector
from ops.logging import JsonFormatter
from ops.outbound import outbound_session
from pos.jobs import register_pull_job, register_push_job
from pos.models import CashRegister, SyncEntry
from pos.services.node import MainUnreachable, register_push
from pos.services.transfer import register_create
from posinv.models import JobRun
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, receive
from tests.fakes.cabinet_vendor import FakeCabinetVendor
from tests.fakes.cartbase import FakeServer, Reply, Request
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.pos.factories import receipt_entries

SHOPIFY_TOKEN = "shpat_0ut60und5ecret"
WOO_KEY, WOO_SECRET = "ck_0ut60und_key", "cs_0ut60und_secret"
VENDOR_KEY = "vendor-key-0ut60und"
NODE_TOKEN = "node-token-0ut60und"
# Every credential the tests send; none may appear in any line.
SECRETS = (SHOPIFY_TOKEN, WOO_KEY, WOO_SECRET, VENDOR_KEY, NODE_TOKEN, "hunter2-0ut60und", "sig-0ut60und",
           "qs-token-0ut60und")
LINE_KEYS = {"event", "system", "connector", "method", "host", "path", "status", "outcome", "duration_ms"}


class _Raw(logging.Handler):
    """Keeps each record's message as the logger received it: before the
    console handler's redacting filter, so the line itself must be clean."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class Lines:
    def __init__(self, handler: _Raw):
        self._handler = handler

    def __call__(self) -> list[dict]:
        return [json.loads(message) for message in self._handler.messages]

    def clear(self) -> None:
        self._handler.messages.clear()

    def leaked(self) -> list[str]:
        text = "\n".join(self._handler.messages)
        return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def outbound_lines():
    handler = _Raw()
    logger = logging.getLogger("posinv.outbound")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield Lines(handler)
    logger.removeHandler(handler)
    logger.setLevel(previous)


def host_of(url: str) -> str:
    return url.removeprefix("http://").split("/")[0]


def fields(line: dict, *names: str) -> tuple:
    return tuple(line.get(name) for name in names)


# -- carts ---------------------------------------------------------------------

@pytest.fixture
def shopify():
    with FakeShopify(token=SHOPIFY_TOKEN) as fake:
        yield fake


def test_a_shopify_push_logs_each_call_of_its_job_run_without_the_access_token(
        sync_on, shopify, shop_location, outbound_lines):
    articles("A-1")
    shopify.add_variant(sku="A-1", available=5)
    store = make_shopify_store(shopify, location=shop_location, code="shop-eu")
    link_all(store)
    receive("A-1", shop_location, 3)
    StackEntry.objects.all().delete()
    outbound_lines.clear()

    qoh_send_job(store_id=store.pk)

    run = JobRun.objects.get(name="cart_send_qoh")
    lines = outbound_lines()
    assert lines, "the push made no logged call"
    assert all(LINE_KEYS <= set(line) for line in lines)
    assert {fields(line, "event", "system", "connector", "method", "host", "path", "status", "outcome",
                   "job_run_id") for line in lines} == {
        ("outbound_call", "shop-eu", "shopify", "POST", host_of(shopify.url), "/admin/api/2026-04/graphql.json",
         200, "ok", run.pk),
    }
    assert all(isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0 for line in lines)
    assert shopify.available("A-1") == 3
    assert outbound_lines.leaked() == []


def test_a_shopify_push_that_times_out_is_logged_as_an_error_with_its_class(shopify, shop_location,
                                                                         outbound_lines):
    variant = shopify.add_variant(sku="A-1", available=5)
    shopify.faults.slow_writes, shopify.faults.slow_seconds = 1, 2.0
    connector = store_connector(store=make_shopify_store(shopify, location=shop_location, code="shop-eu"),
                                timeout=0.3)

    with pytest.raises(UnknownOutcome):
        connector.push_quantities([QuantityUpdate(variant.item_gid, 4, expected=5)])

    (line,) = outbound_lines()
    assert fields(line, "system", "connector", "method", "status", "outcome", "error") == (
        "shop-eu", "shopify", "POST", None, "error", "ReadTimeout")
    assert "job_run_id" not in line  # called outside any job run
    assert outbound_lines.leaked() == []


@pytest.fixture
def woo():
    with FakeWooCommerce(key=WOO_KEY, secret=WOO_SECRET) as fake:
        yield fake


def test_a_woocommerce_push_logs_the_batch_call_without_the_consumer_key_or_secret(woo, shop_location,
                                                                                  outbound_lines):
    product = woo.add_product(sku="A-1", stock=1)
    connector = store_connector(store=make_woo_store(woo, location=shop_location, code="woo-de"))

    outcomes = connector.push_quantities([QuantityUpdate(f"p:{product['id']}", 7)])

    assert [o.status for o in outcomes] == ["ok"]
    (line,) = outbound_lines()
    assert fields(line, "event", "system", "connector", "method", "host", "path", "status", "outcome") == (
        "outbound_call", "woo-de", "woocommerce", "POST", host_of(woo.url), "/wp-json/wc/v3/products/batch", 200, "ok")
    assert outbound_lines.leaked() == []


def test_woocommerce_credentials_in_the_query_are_redacted_and_other_parameters_kept(woo, shop_location,
                                                                                    outbound_lines):
    woo.add_product(sku="A-1", stock=1)
    connector = store_connector(store=make_woo_store(woo, location=shop_location, code="woo-de"))

    # WooCommerce also takes its keys as query parameters (over HTTPS).
    response = connector.request("GET", connector.api("/products"), auth=connector.auth(),
                                 params={"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET, "per_page": 5,
                                         "oauth_signature": "sig-0ut60und"})

    assert response.status_code == 200
    (line,) = outbound_lines()
    assert line["path"] == ("/wp-json/wc/v3/products?consumer_key=[redacted]&consumer_secret=[redacted]"
                            "&per_page=5&oauth_signature=[redacted]")
    assert outbound_lines.leaked() == []


def test_a_throttled_woocommerce_call_logs_the_429_and_its_retry_after(woo, shop_location, outbound_lines):
    product = woo.add_product(sku="A-1", stock=1)
    connector = store_connector(store=make_woo_store(woo, location=shop_location, code="woo-de"))
    woo.throttle_for(30, retry_after=4)

    with pytest.raises(Throttled):
        connector.push_quantities([QuantityUpdate(f"p:{product['id']}", 7)])

    (line,) = outbound_lines()
    assert fields(line, "system", "status", "outcome", "retry_after") == ("woo-de", 429, "refused", 4.0)
    assert woo.stock("A-1") == 1


# -- cabinets ------------------------------------------------------------------

@pytest.fixture
def vendor():
    with FakeCabinetVendor(api_key=VENDOR_KEY) as fake:
        yield fake


@pytest.fixture
def pulling(db, vendor):
    cabinet, _ = cabinet_create(code="CAB1", location_code="CAB-LOC", name="Screw cabinet")
    # A vendor that wants a signature and a token in the query as well as the key in the header.
    WeighingCabinet.objects.filter(pk=cabinet.pk).update(
        pull_url=vendor.url("SN-1") + "?signature=sig-0ut60und&token=qs-token-0ut60und&site=north",
        pull_api_key=VENDOR_KEY, pull_timeout_seconds=2)
    cabinet.refresh_from_db()
    return cabinet


def test_a_cabinet_pull_logs_its_vendor_call_with_the_run_and_no_key(pulling, vendor, outbound_lines):
    vendor.add("SN-1", tray_id="T-1", weight_g="150", read_at="2026-05-03T08:00:00Z")

    counts = cabinet_pull_job(cabinet_id=pulling.pk)

    assert counts["received"] == 1
    run = JobRun.objects.get(name="cabinet_pull")
    (line,) = outbound_lines()
    assert fields(line, "event", "system", "connector", "method", "host", "status", "outcome", "job_run_id") == (
        "outbound_call", "CAB1", "cabinet_vendor", "GET", host_of(vendor.url("SN-1")), 200, "ok", run.pk)
    assert line["path"] == ("/v2/cabinets/SN-1/readings?signature=[redacted]&token=[redacted]&site=north"
                            "&limit=500")
    assert vendor.requests[0]["authorization"] == f"Bearer {VENDOR_KEY}"  # the key was sent, just not logged
    assert outbound_lines.leaked() == []


def test_a_cabinet_vendor_that_times_out_is_logged_as_an_error(pulling, vendor, outbound_lines):
    vendor.delay = 1.0
    WeighingCabinet.objects.filter(pk=pulling.pk).update(pull_timeout_seconds=0.3)
    pulling.refresh_from_db()

    with pytest.raises(PullError, match="did not answer"):
        cabinet_pull(cabinet=pulling)

    (line,) = outbound_lines()
    assert fields(line, "system", "connector", "status", "outcome", "error") == (
        "CAB1", "cabinet_vendor", None, "error", "ReadTimeout")
    assert outbound_lines.leaked() == []


def test_a_vendor_refusing_with_retry_after_is_logged_with_it(pulling, vendor, outbound_lines):
    vendor.fail_next(429, retry_after=120)

    with pytest.raises(PullError, match="rate limiting"):
        cabinet_pull(cabinet=pulling)

    (line,) = outbound_lines()
    assert fields(line, "status", "outcome", "retry_after") == (429, "refused", 120.0)


# -- registers -----------------------------------------------------------------

class FakeRegisterNode(FakeServer):
    """A register node's outbox API for the main system's pull: the entries
    after `after`, then the acknowledgement; anything but the register's
    token is 401."""

    def __init__(self, *, token: str):
        super().__init__()
        self.token = token
        self.entries: list[dict] = []
        self.acknowledged: list[int] = []

    def handle(self, request: Request) -> Reply:
        if request.headers.get("Authorization") != f"Token {self.token}":
            return Reply(401, {"errors": [{"code": "authentication_failed", "reason": "Invalid token."}]})
        if request.method == "GET" and request.path == "/api/v1/sync/outbox/":
            after, limit = int(request.query["after"]), int(request.query["limit"])
            rows = [e for e in self.entries if e["entry_no"] > after][:limit]
            return Reply(200, {"register": "R2", "entries": rows, "last_entry_no": len(self.entries), "more": False})
        if request.method == "POST" and request.path == "/api/v1/sync/outbox/ack/":
            self.acknowledged.append(request.json()["through"])
            return Reply(200, {"through": self.acknowledged[-1], "marked": self.acknowledged[-1]})
        return Reply(404, {"errors": [{"code": "not_found", "reason": "Not found."}]})


def test_a_register_pull_logs_the_outbox_read_and_the_ack_of_its_run_without_the_token(store, article,
                                                                                      outbound_lines):
    with FakeRegisterNode(token="") as node:
        register, token = register_create(code="R2", location_code="S1", sync_type="pull", node_url=node.url)
        node.token = token
        node.entries = receipt_entries(1, "R2-000001", [("A-1", "2", "1.20")])

        counts = register_pull_job(register_code="R2")

    assert (counts["received"], counts["applied"], node.acknowledged) == (3, 3, [3])
    run = JobRun.objects.get(name="register_pull")
    lines = outbound_lines()
    assert [fields(line, "system", "connector", "method", "host", "path", "status", "outcome", "job_run_id")
            for line in lines] == [
        ("R2", "register_node", "GET", host_of(node.url), "/api/v1/sync/outbox/?after=0&limit=500", 200, "ok", run.pk),
        ("R2", "register_node", "POST", host_of(node.url), "/api/v1/sync/outbox/ack/", 200, "ok", run.pk),
    ]
    assert token not in json.dumps(lines) and outbound_lines.leaked() == []


def test_a_register_node_that_is_down_is_logged_as_a_connection_error(store, outbound_lines):
    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    register_create(code="R2", location_code="S1", sync_type="pull", node_url=f"http://127.0.0.1:{closed_port}")

    counts = register_pull_job(register_code="R2")

    assert "unreachable" in counts
    (line,) = outbound_lines()
    assert fields(line, "system", "connector", "host", "status", "outcome", "error") == (
        "R2", "register_node", f"127.0.0.1:{closed_port}", None, "error", "ConnectionError")


class FakeMain(FakeServer):
    """The main system as a push register node sees it: its settings and the
    entries endpoint, which answers 503 `fail_entries` times first."""

    def __init__(self, *, token: str):
        super().__init__()
        self.token = token
        self.fail_entries = 0
        self.received: list[int] = []

    def handle(self, request: Request) -> Reply:
        if request.headers.get("Authorization") != f"Token {self.token}":
            return Reply(401, {"errors": [{"code": "authentication_failed", "reason": "Invalid token."}]})
        if request.method == "GET" and request.path == "/api/v1/registers/R1/settings/":
            return Reply(200, {"code": "R1", "location": "S1", "location_name": "Store 1", "sync_type": "push",
                               "records_per_run": 500, "interval_seconds": 60})
        if request.method == "POST" and request.path == "/api/v1/registers/R1/entries/":
            if self.fail_entries:
                self.fail_entries -= 1
                return Reply(503, {"errors": "maintenance"})
            numbers = [entry["entry_no"] for entry in request.json()["entries"]]
            self.received += numbers
            return Reply(200, {"last_applied_entry_no": max(numbers), "applied": len(numbers)})
        return Reply(404, {"errors": [{"code": "not_found", "reason": "Not found."}]})


@pytest.fixture
def node_with_a_sale(settings, db):
    with FakeMain(token=NODE_TOKEN) as main:
        settings.POSINV_NODE = "register"
        settings.POSINV_REGISTER_CODE = "R1"
        settings.POSINV_REGISTER_TOKEN = NODE_TOKEN
        settings.MAIN_URL = main.url
        till = APIClient()
        till.credentials(HTTP_AUTHORIZATION=f"Token {NODE_TOKEN}")
        answer = till.post("/api/v1/till/receipts/", {
            "receipt_no": "R1-000001", "created_at": "2026-03-02T09:00:00+01:00",
            "lines": [{"line_no": 1, "sku": "A-1", "quantity": "2", "unit_price": "1.20"}],
            "payments": [{"line_no": 1, "method": "cash", "amount": "2.40"}]}, format="json")
        assert answer.status_code == 201
        yield main


def test_a_node_push_logs_its_calls_to_the_main_system_with_the_attempt(node_with_a_sale, outbound_lines):
    main = node_with_a_sale
    main.fail_entries = 1
    with pytest.raises(MainUnreachable):
        register_push()
    outbound_lines.clear()

    counts = register_push_job()

    assert counts["sent"] == 3 and main.received == [1, 2, 3]
    run = JobRun.objects.get(name="register_push")
    assert [fields(line, "system", "connector", "method", "path", "status", "attempt", "job_run_id")
            for line in outbound_lines()] == [
        # settings are fetched again after a failure; then the second try of the push
        ("R1", "main_system", "GET", "/api/v1/registers/R1/settings/", 200, None, run.pk),
        ("R1", "main_system", "POST", "/api/v1/registers/R1/entries/", 200, 2, run.pk),
    ]
    assert CashRegister.objects.get(code="R1").failures_in_row == 0
    assert SyncEntry.objects.filter(state="pending").count() == 0
    assert outbound_lines.leaked() == []


def test_a_failed_node_push_logs_the_5xx_as_an_error(node_with_a_sale, outbound_lines):
    node_with_a_sale.fail_entries = 1

    with pytest.raises(MainUnreachable):
        register_push()

    assert [fields(line, "method", "path", "status", "outcome", "attempt") for line in outbound_lines()] == [
        ("POST", "/api/v1/registers/R1/entries/", 503, "error", 1),
    ]
    assert outbound_lines.leaked() == []


# -- the helper itself -----------------------------------------------------------

class Anything(FakeServer):
    def handle(self, request: Request) -> Reply:
        return Reply(302, None, {"Location": "/landed"}) if request.path == "/moved" else Reply(200, {"ok": True})


def test_userinfo_and_credential_parameters_never_reach_the_line_and_each_redirect_hop_is_one_line(
        outbound_lines):
    with Anything() as server:
        port = server.url.rsplit(":", 1)[1]
        session = outbound_session(system="ext-1", connector="feed")
        session.headers["Authorization"] = "Bearer qs-token-0ut60und"

        response = session.get(f"http://admin:hunter2-0ut60und@127.0.0.1:{port}/moved",
                               params={"password": "hunter2-0ut60und", "api_key": VENDOR_KEY, "page": 2},
                               timeout=5)

    assert response.status_code == 200
    assert [fields(line, "host", "path", "status", "outcome") for line in outbound_lines()] == [
        (f"127.0.0.1:{port}", "/moved?password=[redacted]&api_key=[redacted]&page=2", 302, "ok"),
        (f"127.0.0.1:{port}", "/landed", 200, "ok"),
    ]
    assert outbound_lines.leaked() == []


def test_a_session_without_a_connector_kind_is_refused():
    with pytest.raises(ValueError, match="connector kind"):
        outbound_session(system="x", connector="")


def test_the_configured_json_handler_writes_the_line_as_fields(outbound_lines):
    console = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    buffer = io.StringIO()
    previous = console.setStream(buffer)
    try:
        with Anything() as server, outbound_session(system="ext-1", connector="feed") as session:
            session.get(f"{server.url}/x", timeout=5)
    finally:
        console.setStream(previous)

    logged = [json.loads(line) for line in buffer.getvalue().splitlines() if '"outbound_call"' in line]
    assert [fields(line, "logger", "level", "event", "system", "path", "status") for line in logged] == [
        ("posinv.outbound", "info", "outbound_call", "ext-1", "/x", 200)]


def test_requests_errors_are_raised_to_the_caller_unchanged(outbound_lines):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(requests.ConnectionError):
        outbound_session(system="ext-1", connector="feed").get(f"http://127.0.0.1:{closed_port}/", timeout=2)

    assert [fields(line, "status", "error") for line in outbound_lines()] == [(None, "ConnectionError")]
