"""No secrets in logs or error pages: a real gunicorn server with DEBUG off
is made to fail (its token table is dropped under it) while requests carry a
staff token, a session cookie, a store access token and a password in the
query string. The 500 answer shows none of them and no traceback; the JSON
log records the error but none of the secrets either."""
from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

import pytest
import requests

from tests.reliability.systems import seed
from tests.support.processes import LOG_DIR, database_url, process_env, started_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOP_TOKEN = "shpat_0123456789abcdef0123456789abcdef"
SESSION = "sess1onvalue0123456789abcdefghij"
PASSWORD = "hunter2-very-secret"


def _drop_token_table(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(urlsplit(url).path) as conn:
            conn.execute("DROP TABLE posinv_apitoken")
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE posinv_apitoken CASCADE")


def _server_log(before: set) -> str:
    new = [p for p in LOG_DIR.glob("secrets-*.log") if p not in before]
    return "".join(p.read_text(errors="replace") for p in new)


def test_a_500_with_credentials_in_the_request_leaks_them_neither_to_the_answer_nor_to_the_log():
    env = process_env(database=database_url("h_secrets"), redis=False, DEBUG="0", LOG_FORMAT="json")
    before = set(LOG_DIR.glob("secrets-*.log")) if LOG_DIR.exists() else set()
    with started_server(env=env, name="secrets") as url:
        tokens = seed(env, tills=["T1"])
        staff, till = tokens["staff"], tokens["T1"]
        headers = {"Authorization": f"Token {staff}", "Cookie": f"sessionid={SESSION}",
                   "X-Shopify-Access-Token": SHOP_TOKEN}
        # a 401 for a wrong token does not echo it
        wrong = requests.get(f"{url}/api/v1/stock-levels/", headers={"Authorization": "Token wr0ngtok3nvalue99"},
                             timeout=30)
        # a 404 with DEBUG off lists no URL patterns
        missing = requests.get(f"{url}/no/such/page/", timeout=30)
        # when the database fails under requests carrying credentials
        _drop_token_table(env["DATABASE_URL"])
        broken = requests.get(f"{url}/api/v1/stock-levels/?password={PASSWORD}", headers=headers, timeout=30)
        broken_till = requests.post(f"{url}/api/v1/sales/", json={"lines": []}, timeout=30,
                                    headers={"Authorization": f"Bearer {till}", "Idempotency-Key": "k"})
    log = _server_log(before)

    assert wrong.status_code == 401 and "wr0ngtok3nvalue99" not in wrong.text
    assert missing.status_code == 404
    assert "api/v1/" not in missing.text and "URLconf" not in missing.text
    # then the answers are plain 500s without a traceback or any credential
    assert (broken.status_code, broken_till.status_code) == (500, 500)
    for answer in (broken.text, broken_till.text):
        assert "Traceback" not in answer and "posinv_apitoken" not in answer
        for secret in (staff, till, SESSION, SHOP_TOKEN, PASSWORD):
            assert secret not in answer
    # and the log has the errors, but no credential
    assert log.count("Internal Server Error") >= 2
    assert "posinv_apitoken" in log  # the cause is logged...
    for secret in (staff, till, SESSION, SHOP_TOKEN, PASSWORD, "wr0ngtok3nvalue99"):
        assert secret not in log  # ...the credentials are not
