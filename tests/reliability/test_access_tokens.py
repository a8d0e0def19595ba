"""Device and user tokens: stored hashed, each device reaches only its own
endpoints, and a client that keeps sending bad tokens is throttled (429 with
Retry-After) while good clients carry on."""
from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from posinv.api.throttling import auth_failure_record, auth_failures_count
from posinv.models import ApiToken, StockMove
from posinv.services.tokens import token_hash

pytestmark = pytest.mark.django_db

# What each device token may reach on the main system; everything else in the
# schema must answer 401, 403, 404 or 405 to it. (Node-only endpoints answer
# 404 on the main system.)
DEVICE_ALLOWED = {
    "register": {
        ("POST", "/api/v1/registers/{code}/entries/"),
        ("GET", "/api/v1/registers/{code}/settings/"),
        ("GET", "/api/v1/scan/{code}/"),
        ("POST", "/api/v1/sales/"),
        ("POST", "/api/v1/rfid/reads/"),
    },
    "cabinet": {("POST", "/api/v1/cabinets/{code}/readings/")},
}
# Signed by the platform instead of a token (carts/api/views.py OrderWebhookView).
PUBLIC = {("POST", "/api/v1/carts/{code}/webhook/")}


def _operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )


def _call(client, method: str, path: str, code: str):
    url = re.sub(r"\{code\}", code, path)
    url = re.sub(r"\{[a-z_]+\}", "X-1", url)
    return getattr(client, method.lower())(url, {}, format="json") if method != "GET" else client.get(url)


def test_tokens_are_stored_only_as_their_sha256(world):
    stored = dict(ApiToken.objects.values_list("subject", "key_hash"))
    assert stored["R1"] == token_hash(world.tokens["R1"])
    for raw in world.tokens.values():
        assert not ApiToken.objects.filter(key_hash=raw).exists()
        assert len(ApiToken.objects.get(key_hash=token_hash(raw)).prefix) == 8


@pytest.mark.parametrize("device,kind", [("R1", "register"), ("CAB1", "cabinet")])
def test_a_device_token_reaches_nothing_outside_its_own_endpoints(world, device, kind):
    # given every operation of the published schema
    operations = _operations()
    assert len(operations) > 20
    client = world.client(device)
    moves_before = StockMove.objects.count()
    reached = []
    for method, path in operations:
        if (method, path) in DEVICE_ALLOWED[kind] or (method, path) in PUBLIC:
            continue
        # when the device calls it (with its own code where the path takes one)
        response = _call(client, method, path, device)
        # then it is refused
        if response.status_code not in {401, 403, 404, 405}:
            reached.append((method, path, response.status_code))
    assert reached == []
    assert StockMove.objects.count() == moves_before


@pytest.mark.parametrize(
    "device,method,path",
    [
        ("R1", "POST", "/api/v1/registers/{code}/entries/"),
        ("R1", "GET", "/api/v1/registers/{code}/settings/"),
        ("CAB1", "POST", "/api/v1/cabinets/{code}/readings/"),
    ],
)
def test_a_device_on_another_device_s_url_gets_403_and_nothing_moves(world, device, method, path):
    other = {"R1": "R2", "CAB1": "CAB2"}[device]
    moves_before = StockMove.objects.count()
    response = _call(world.client(device), method, path, other)
    assert response.status_code == 403
    assert response.json() == {"errors": [{"reason": "This token belongs to another device.",
                                           "code": "permission_denied"}]}
    assert StockMove.objects.count() == moves_before


@pytest.mark.parametrize(
    "device,method,path",
    [
        ("CAB1", "POST", "/api/v1/registers/{code}/entries/"),
        ("CAB1", "GET", "/api/v1/registers/{code}/settings/"),
        ("R1", "POST", "/api/v1/cabinets/{code}/readings/"),
    ],
)
def test_a_device_of_the_wrong_kind_gets_403(world, device, method, path):
    target = {"CAB1": "R1", "R1": "CAB1"}[device]
    response = _call(world.client(device), method, path, target)
    assert response.status_code == 403


def test_own_device_endpoints_accept_their_own_token(world):
    assert world.client("R1").get("/api/v1/registers/R1/settings/").status_code == 200
    assert world.client("R1").get("/api/v1/scan/4006381333931/").status_code == 200
    readings = world.client("CAB1").post("/api/v1/cabinets/CAB1/readings/", {"readings": []}, format="json")
    assert readings.status_code in {200, 400}  # reached the view: an empty batch is its call, not auth's


@pytest.mark.parametrize("who", [None, "bad"])
@pytest.mark.parametrize("method,path", sorted(DEVICE_ALLOWED["register"] | DEVICE_ALLOWED["cabinet"]))
def test_device_endpoints_refuse_missing_and_wrong_tokens_with_401(world, who, method, path):
    response = _call(world.client(who), method, path, "R1" if "registers" in path else "CAB1")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_repeated_bad_tokens_are_throttled_with_retry_after_and_others_go_on(world, settings):
    # given a limit of 5 failures a minute per address
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 5
    attacker = world.client("bad", addr="10.0.0.66")
    # when an address sends 5 bad tokens
    statuses = [attacker.get("/api/v1/registers/R1/settings/").status_code for _ in range(5)]
    assert statuses == [401] * 5
    # then the 6th attempt is refused 429 with Retry-After, before any lookup
    blocked = attacker.get("/api/v1/registers/R1/settings/")
    assert blocked.status_code == 429
    assert 1 <= int(blocked["Retry-After"]) <= 60
    assert blocked.json()["errors"][0]["code"] == "throttled"
    # even with a valid token from that address: the attacker learns nothing
    attacker.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens['R1']}")
    assert attacker.get("/api/v1/registers/R1/settings/").status_code == 429
    # while a till at another address is served
    assert world.client("R1", addr="10.0.0.7").get("/api/v1/registers/R1/settings/").status_code == 200
    assert auth_failures_count(client="10.0.0.66") == 5
    assert auth_failures_count(client="10.0.0.7") == 0


def test_good_tokens_never_count_towards_the_limit(world, settings):
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 2
    till = world.client("R1", addr="10.0.0.8")
    assert [till.get("/api/v1/registers/R1/settings/").status_code for _ in range(10)] == [200] * 10
    assert auth_failures_count(client="10.0.0.8") == 0


def test_the_window_is_one_minute(world, settings):
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 3
    for _ in range(3):
        auth_failure_record(client="10.0.0.9", now=6000.0)
    assert auth_failures_count(client="10.0.0.9", now=6059.0) == 3
    assert auth_failures_count(client="10.0.0.9", now=6060.0) == 0


@pytest.mark.redis
def test_with_redis_the_counters_are_shared_in_redis(world, settings, redis_conn):
    # given Redis configured (as every web process of a deployment shares it)
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 3
    attacker = world.client("bad", addr="10.0.0.77")
    assert [attacker.get("/api/v1/sales/").status_code for _ in range(4)] == [401, 401, 401, 429]
    keys = [k.decode() for k in redis_conn.keys("posinv:authfail:10.0.0.77:*")]
    assert len(keys) == 1
    assert int(redis_conn.get(keys[0])) == 3
    assert 60 <= redis_conn.ttl(keys[0]) <= 120


@pytest.mark.redis
def test_a_down_redis_falls_back_to_in_process_counting_and_valid_tokens_still_work(world, settings):
    # given a Redis URL where nothing listens
    from tests.support.processes import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 2
    assert world.client("R1", addr="10.0.0.5").get("/api/v1/registers/R1/settings/").status_code == 200
    attacker = world.client("bad", addr="10.0.0.78")
    assert [attacker.get("/api/v1/sales/").status_code for _ in range(3)] == [401, 401, 429]


NODE_ENDPOINTS = [
    ("POST", "/api/v1/till/receipts/"),
    ("POST", "/api/v1/till/processes/"),
    ("POST", "/api/v1/till/stock-counts/"),
    ("GET", "/api/v1/sync/outbox/"),
    ("POST", "/api/v1/sync/outbox/ack/"),
    ("POST", "/api/v1/sync/push-now/"),
]


@pytest.mark.parametrize("method,path", NODE_ENDPOINTS)
def test_on_a_register_node_only_its_own_register_token_gets_in(world, settings, method, path):
    # given this process is register node R1
    settings.POSINV_NODE = "register"
    settings.POSINV_REGISTER_CODE = "R1"
    settings.POSINV_REGISTER_TOKEN = world.tokens["R1"]
    settings.MAIN_URL = "http://127.0.0.1:9"
    # then another register's or a cabinet's token is refused 403, no token 401
    for other in ("R2", "CAB1"):
        response = _call(world.client(other), method, path, "R1")
        assert response.status_code == 403, (other, response.content)
        assert response.json()["errors"][0]["reason"] == "This token belongs to another device."
    assert _call(world.client(None), method, path, "R1").status_code == 401
    # while its own token passes authentication and permission (the view then judges the body)
    assert _call(world.client("R1"), method, path, "R1").status_code not in {401, 403}


def test_behind_the_proxy_each_client_is_counted_by_the_address_nginx_appended(world, settings):
    # given the documented nginx in front (all requests come from 127.0.0.1)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 2
    attacker = world.client("bad")
    # when an attacker sends bad tokens and forges X-Forwarded-For to look like many clients
    statuses = [attacker.get("/api/v1/sales/", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.5").status_code
                for n in range(3)]
    # then it is counted by the address nginx appended, and a till behind the same proxy still gets in
    assert statuses == [401, 401, 429]
    till = world.client("R1")
    assert till.get("/api/v1/registers/R1/settings/", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 200


def test_without_a_proxy_a_forged_forwarded_for_is_ignored(world, settings):
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 2
    attacker = world.client("bad", addr="10.0.0.99")
    statuses = [attacker.get("/api/v1/sales/", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}").status_code for n in range(3)]
    assert statuses == [401, 401, 429]
