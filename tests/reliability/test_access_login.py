"""Password logins are throttled (issue #11): after repeated failures for one
username, or from one address, the admin login refuses every attempt (a
correct password included, without checking it) and says for how long, until
the lockout passes; a success clears the username's count; counters are shared
by web processes through Redis and kept in-process while Redis is down; API
tokens are not affected."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ops.logging import JsonFormatter
from posinv.services import login_throttle
from tests.support.processes import REPO, database_url, manage, process_env, started_server

pytestmark = pytest.mark.django_db

WRONG_PASSWORD = "Please enter the correct username and password for a staff account."
LOCKED = "Too many failed logins for this account or from this address."
LOCKOUT_SECONDS = 900


@pytest.fixture(autouse=True)
def _clean_shared_counters(settings):
    """Login counters live in the suite's Redis database when one is configured: start and end empty."""
    if settings.REDIS_URL:
        import redis

        conn = redis.Redis.from_url(settings.REDIS_URL)
        conn.flushdb()
        yield
        conn.flushdb()
    else:
        yield


@pytest.fixture
def limits(settings):
    """3 failures per username, 100 per address, 15 minutes: tests lower the address limit where they need it."""
    settings.POSINV_LOGIN_FAILURES_PER_USER = 3
    settings.POSINV_LOGIN_FAILURES_PER_ADDRESS = 100
    settings.POSINV_LOGIN_LOCKOUT_SECONDS = LOCKOUT_SECONDS
    return settings


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, starting now; `clock.advance(seconds)` moves it on."""

    class Clock:
        now = time.time()

        def advance(self, seconds: float) -> None:
            self.now += seconds

    fake = Clock()
    monkeypatch.setattr(login_throttle, "clock", lambda: fake.now)
    return fake


@pytest.fixture
def log_lines():
    """The configured JSON console handler writing into a buffer; returns the lines parsed so far."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    handler.setStream(previous)


@pytest.fixture
def clerk(django_user_model):
    return django_user_model.objects.create_user(username="clerk2", password="clerk2-pass", is_staff=True)


def browser(addr: str = "127.0.0.1") -> Client:
    return Client(REMOTE_ADDR=addr)


def login(client: Client, username: str, password: str, **headers):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password,
                                                     "next": "/admin/"}, **headers)


def outcome(response) -> str:
    """'in' when the login went through, else the form's error."""
    if response.status_code == 302 and response["Location"] == "/admin/":
        return "in"
    assert response.status_code == 200
    [error] = response.context["form"].non_field_errors()
    if error.startswith(LOCKED):
        return "locked"
    assert error.startswith(WRONG_PASSWORD), error
    return "wrong"


def is_logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_a_username_is_locked_after_repeated_failures_from_any_address(world, limits, clerk):
    # when the password of "boss" is guessed wrong three times from three addresses
    results = [outcome(login(browser(f"10.0.1.{n}"), "boss", f"guess-{n}")) for n in range(3)]
    # then the third failure starts a lockout, and the page says so, with the time to wait
    assert results == ["wrong", "wrong", "locked"]
    page = login(browser("10.0.1.9"), "boss", "boss-pass")
    assert "Too many failed logins for this account or from this address. Please try again in about 15 minutes." \
        in page.content.decode()
    # the correct password, from yet another address, does not get in
    owner = browser("10.0.1.10")
    assert outcome(login(owner, "boss", "boss-pass")) == "locked"
    assert not is_logged_in(owner)
    # nor through any other authenticate() call
    assert Client().login(username="boss", password="boss-pass") is False
    # while another account from the same addresses logs in
    colleague = browser("10.0.1.1")
    assert outcome(login(colleague, "clerk2", "clerk2-pass")) == "in"
    assert is_logged_in(colleague)


def test_an_address_is_locked_after_repeated_failures_for_any_usernames(world, limits):
    limits.POSINV_LOGIN_FAILURES_PER_ADDRESS = 3
    attacker = browser("10.0.2.66")
    # when one address fails for three usernames, existing or not
    results = [outcome(login(attacker, name, "guess")) for name in ("boss", "root", "nobody-here")]
    # then it is locked out, for a correct password of a fourth user as well
    assert results == ["wrong", "wrong", "locked"]
    assert outcome(login(attacker, "boss", "boss-pass")) == "locked"
    assert not is_logged_in(attacker)
    # while the same user from another address gets in
    assert outcome(login(browser("10.0.2.7"), "boss", "boss-pass")) == "in"


def test_during_a_lockout_the_password_is_not_even_looked_at(world, limits, django_user_model):
    for _ in range(3):
        login(browser(), "boss", "guess")
    # when the right password is sent during the lockout
    with CaptureQueriesContext(connection) as queries:
        response = login(browser(), "boss", "boss-pass")
    # then it is refused without the user being read, so nothing was compared
    assert outcome(response) == "locked"
    assert [q["sql"] for q in queries if "auth_user" in q["sql"]] == []
    assert django_user_model.objects.get(username="boss").last_login is None


def test_a_successful_login_clears_the_username_s_failures(world, limits):
    # given two failures of three allowed
    assert [outcome(login(browser(), "boss", "guess")) for _ in range(2)] == ["wrong", "wrong"]
    # when the owner then logs in
    assert outcome(login(browser(), "boss", "boss-pass")) == "in"
    # then the count starts again: two more failures do not lock the account
    assert [outcome(login(browser(), "boss", "guess")) for _ in range(2)] == ["wrong", "wrong"]
    assert outcome(login(browser(), "boss", "boss-pass")) == "in"


def test_the_lockout_ends_when_its_time_has_passed(world, limits, clock):
    # given a lockout started now
    assert [outcome(login(browser(), "boss", "guess")) for _ in range(3)] == ["wrong", "wrong", "locked"]
    # a minute before its end it still holds, and the page says about one minute
    clock.advance(LOCKOUT_SECONDS - 60)
    page = login(browser(), "boss", "boss-pass")
    assert outcome(page) == "locked"
    assert "Please try again in about 1 minute." in page.content.decode()
    # when its time has passed
    clock.advance(61)
    # then the owner gets in, and a wrong password is an ordinary failure again
    owner = browser()
    assert outcome(login(owner, "boss", "boss-pass")) == "in"
    assert is_logged_in(owner)
    assert outcome(login(browser(), "boss", "guess")) == "wrong"


def test_each_lockout_writes_one_json_line_without_the_password(world, limits, log_lines):
    limits.POSINV_LOGIN_FAILURES_PER_ADDRESS = 5
    attacker = browser("10.0.3.66")
    # when an address fails three times for boss (a username lockout) and twice more for others (an address lockout)
    for name in ("boss", "boss", "boss", "root", "admin"):
        login(attacker, name, "hunter2-secret")
    # and keeps trying during the lockout
    for _ in range(4):
        login(attacker, "boss", "hunter2-secret")
    # then there is exactly one line per lockout
    lines = [line for line in log_lines() if line.get("event") == "login_lockout"]
    assert [{k: v for k, v in line.items() if k != "ts"} for line in lines] == [
        {"level": "warning", "logger": "posinv.login_throttle", "event": "login_lockout", "scope": "username",
         "failures": 3, "locked_seconds": LOCKOUT_SECONDS, "address": "10.0.3.66", "username": "boss"},
        {"level": "warning", "logger": "posinv.login_throttle", "event": "login_lockout", "scope": "address",
         "failures": 5, "locked_seconds": LOCKOUT_SECONDS, "address": "10.0.3.66"},
    ]
    assert "hunter2-secret" not in json.dumps(log_lines())


def test_behind_the_proxy_an_address_is_the_one_nginx_appended(world, limits, settings):
    # given the documented nginx in front (every request comes from 127.0.0.1)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    limits.POSINV_LOGIN_FAILURES_PER_ADDRESS = 2
    attacker = browser()
    # when an attacker forges X-Forwarded-For to look like many clients
    results = [outcome(login(attacker, f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.5"))
               for n in range(3)]
    # then it is counted by the address nginx appended, and staff behind the same proxy still get in
    assert results == ["wrong", "locked", "locked"]
    assert outcome(login(browser(), "boss", "boss-pass", HTTP_X_FORWARDED_FOR="198.51.100.7")) == "in"


def test_a_staff_api_token_keeps_working_while_its_user_and_address_are_locked_out(world, limits):
    limits.POSINV_LOGIN_FAILURES_PER_ADDRESS = 3
    # given boss's password login locked out, by username and from 127.0.0.1
    assert [outcome(login(browser(), "boss", "guess")) for _ in range(3)] == ["wrong", "wrong", "locked"]
    assert outcome(login(browser(), "boss", "boss-pass")) == "locked"
    # then boss's API token from that same address is served
    api = world.client("staff")
    response = api.get("/api/v1/stock-levels/", {"location": "S1"})
    assert response.status_code == 200
    assert [row["on_hand"] for row in response.json()["results"]] == ["100.000"]


@pytest.mark.redis
def test_with_redis_the_lockout_is_kept_in_redis(world, limits, settings):
    import redis

    for _ in range(3):
        login(browser("10.0.4.1"), "boss", "guess")
    conn = redis.Redis.from_url(settings.REDIS_URL)
    [lock_key] = [k.decode() for k in conn.keys("posinv:loginlock:user:*")]
    assert float(conn.get(lock_key)) > time.time() + LOCKOUT_SECONDS - 60
    assert LOCKOUT_SECONDS < conn.ttl(lock_key) <= LOCKOUT_SECONDS + 60


@pytest.mark.redis
def test_a_down_redis_falls_back_to_in_process_counting_and_logins_still_work(world, limits, settings, caplog):
    # given a Redis URL where nothing listens
    from tests.support.processes import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    # then the owner still logs in
    owner = browser()
    assert outcome(login(owner, "boss", "boss-pass")) == "in"
    assert is_logged_in(owner)
    assert "Redis unavailable (ConnectionError); counting in-process" in caplog.text
    # and repeated failures are still throttled, in this process
    assert [outcome(login(browser(), "boss", "guess")) for _ in range(3)] == ["wrong", "wrong", "locked"]
    assert outcome(login(browser(), "boss", "boss-pass")) == "locked"


ADMIN = """
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-pass-123")
"""


def _server_login(url: str, username: str, password: str) -> str:
    """Log in to a running server's admin like a browser; 'in', 'locked' or 'wrong'."""
    session = requests.Session()
    session.get(f"{url}/admin/login/", timeout=10)
    answer = session.post(f"{url}/admin/login/?next=/admin/", timeout=10, data={
        "username": username, "password": password, "next": "/admin/",
        "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    if answer.url == f"{url}/admin/":
        return "in"
    if LOCKED in answer.text:
        return "locked"
    assert WRONG_PASSWORD in answer.text, answer.text[:500]
    return "wrong"


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.slow
def test_two_processes_share_the_counters_through_redis(limits, django_user_model):
    # given a gunicorn server and this process, both on the suite's Redis, each with a user "ops"
    env = process_env(database=database_url("login"), POSINV_LOGIN_FAILURES_PER_USER="3",
                      POSINV_LOGIN_FAILURES_PER_ADDRESS="100", POSINV_LOGIN_LOCKOUT_SECONDS=str(LOCKOUT_SECONDS))
    django_user_model.objects.create_superuser("ops", "ops@example.com", "ops-pass-123")
    with started_server(env=env, name="login-server") as url:
        manage("shell", "-c", ADMIN, env=env)
        # when the failures alternate between the server and this process
        results = [_server_login(url, "ops", "guess-1"), outcome(login(browser(), "ops", "guess-2")),
                   _server_login(url, "ops", "guess-3")]
        # then they add up to one count: the third starts the lockout, which both processes enforce
        assert results == ["wrong", "wrong", "locked"]
        assert outcome(login(browser(), "ops", "ops-pass-123")) == "locked"
        assert _server_login(url, "ops", "ops-pass-123") == "locked"


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_a_bad_limit_setting_stops_start_up_with_a_clear_message(value):
    env = {**os.environ, "SECRET_KEY": "x", "POSINV_LOGIN_LOCKOUT_SECONDS": value}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run([sys.executable, "-c", "import config.settings"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"POSINV_LOGIN_LOCKOUT_SECONDS must be a whole number of at least 1, not '{value}'." in result.stderr
