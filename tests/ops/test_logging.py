"""Structured logs: one JSON line per job run and per sync call (what, for
whom, how many, how long, outcome), and no credential ever in a line."""
from __future__ import annotations

import io
import json
import logging

import pytest

from ops.logging import REDACTED, JsonFormatter, RedactFilter
from posinv.services.runs import job_run
from tests.factories import make_article
from tests.pos.factories import make_register, receipt_entries


@pytest.fixture
def log_lines():
    """The configured console handler (settings.LOGGING) writing into a buffer;
    returns a function giving the JSON lines written so far."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    handler.setStream(previous)


def test_the_console_handler_is_json_with_the_redacting_filter():
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))

    assert any(isinstance(f, RedactFilter) for f in handler.filters)


@pytest.mark.django_db
def test_a_job_run_logs_one_json_line_with_what_for_whom_how_many_how_long_and_outcome(log_lines):
    with job_run("register_push", "R1") as counts:
        counts.update(sent=12, calls=1)

    (line,) = [line for line in log_lines() if line.get("event") == "job_run"]
    assert {k: line[k] for k in ("level", "logger", "event", "job", "subject", "outcome", "counts")} == {
        "level": "info", "logger": "posinv.jobs", "event": "job_run", "job": "register_push", "subject": "R1",
        "outcome": "succeeded", "counts": {"sent": 12, "calls": 1},
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["ts"].endswith("+00:00")


@pytest.mark.django_db
def test_a_failed_job_run_logs_its_error_without_the_credential_in_it(log_lines):
    with pytest.raises(RuntimeError), job_run("cart_send_qoh", "shop"):
        raise RuntimeError("store refused Authorization: Bearer shpat_abcdef123456 for password=hunter22")

    (line,) = [line for line in log_lines() if line.get("event") == "job_run"]
    assert line["outcome"] == "failed"
    assert line["error"] == f"store refused Authorization: Bearer {REDACTED} for password={REDACTED}"
    assert "shpat_abcdef123456" not in json.dumps(log_lines()) and "hunter22" not in json.dumps(log_lines())


@pytest.mark.django_db
def test_a_sync_call_logs_one_line_for_the_register_with_counts_and_never_its_token(log_lines, store,
                                                                                    register_client):
    make_article(sku="A-1")
    make_register(code="R1", location=store)
    api = register_client("R1")
    token = api._credentials["HTTP_AUTHORIZATION"].split()[1]

    answer = api.post("/api/v1/registers/R1/entries/",
                      {"entries": receipt_entries(1, "R1-000001", [("A-1", "2", "1.20")])}, format="json")

    assert answer.status_code == 200
    (line,) = [line for line in log_lines() if line.get("event") == "sync_call"]
    assert {k: line[k] for k in ("method", "path", "for", "status", "outcome")} == {
        "method": "POST", "path": "/api/v1/registers/R1/entries/", "for": "register:R1", "status": 200,
        "outcome": "ok"}
    assert line["counts"] == {"applied": 3, "duplicate": 0, "failed": 0, "waiting": 0}
    assert token not in json.dumps(log_lines())


@pytest.mark.django_db
def test_a_refused_sync_call_is_logged_as_refused_for_anonymous(log_lines, client):
    answer = client.post("/api/v1/registers/R1/entries/", {"entries": []}, content_type="application/json",
                         HTTP_AUTHORIZATION="Token not-a-real-token-123456")

    (line,) = [line for line in log_lines() if line.get("event") == "sync_call"]
    assert (line["status"], line["outcome"], line["for"]) == (answer.status_code, "refused", "anonymous")
    assert answer.status_code in (401, 403)
    assert "not-a-real-token-123456" not in json.dumps(log_lines())


def _formatted(record_msg, *args, **extra) -> dict:
    record = logging.LogRecord("posinv.test", logging.WARNING, __file__, 1, record_msg, args or None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    assert RedactFilter().filter(record) is True
    return json.loads(JsonFormatter().format(record))


@pytest.mark.parametrize(("message", "expected"), [
    ("GET /x Authorization: Token 0123456789abcdef", f"GET /x Authorization: Token {REDACTED}"),
    ("header Bearer eyJhbGciOi.JIUzI1NiJ9", f"header Bearer {REDACTED}"),
    ("login password=hunter22&user=bob", f"login password={REDACTED}&user=bob"),
    ("url https://s.example/api?api_key=AK123&page=2", f"url https://s.example/api?api_key={REDACTED}&page=2"),
    ("X-Shopify-Access-Token: shpat_1234567890", f"X-Shopify-Access-Token: {REDACTED}"),
    ("sent 12 entries to R1 in 40 ms", "sent 12 entries to R1 in 40 ms"),
    ("Token rotated for register R1; Basic settings kept", "Token rotated for register R1; Basic settings kept"),
    ("retry with Bearer abcdefghijklmnop", f"retry with Bearer {REDACTED}"),
])
def test_credentials_in_free_text_are_redacted_and_nothing_else(message, expected):
    assert _formatted(message)["message"] == expected


def test_credentials_in_format_arguments_are_redacted():
    line = _formatted("store %s answered with %s", "woo", {"consumer_secret": "cs_live_999", "status": 401})

    assert line["message"] == f"store woo answered with {{'consumer_secret': '{REDACTED}', 'status': 401}}"


def test_credential_keys_in_a_json_message_and_in_extra_fields_are_redacted():
    message = json.dumps({"event": "job_run", "job": "cart_send_qoh", "counts": {"sent": 3},
                          "params": {"access_token": "shpat_x", "location_id": "gid://1"},
                          "headers": {"Authorization": "Token abc", "Accept": "json"}})

    line = _formatted(message, fields={"password": "pw", "store": "shop", "nested": [{"api-key": "k"}]})

    assert line["params"] == {"access_token": REDACTED, "location_id": "gid://1"}
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert (line["password"], line["store"], line["nested"]) == (REDACTED, "shop", [{"api-key": REDACTED}])
    assert line["counts"] == {"sent": 3}


def test_an_exception_traceback_is_redacted_too():
    try:
        raise ValueError("refused token=tok_abcdef99")
    except ValueError:
        import sys

        record = logging.LogRecord("posinv.test", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    RedactFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))

    assert "tok_abcdef99" not in line["exception"]
    assert f"token={REDACTED}" in line["exception"]


@pytest.mark.django_db
def test_logging_a_sync_call_costs_no_query(log_lines, admin_client, django_assert_num_queries):
    # Logged in: reading the user for the log line would load the session and the user.
    with django_assert_num_queries(0):
        answer = admin_client.get("/api/v1/no-such-endpoint/")

    (line,) = [line for line in log_lines() if line.get("event") == "sync_call"]
    assert (answer.status_code, line["status"], line["for"], line["view"]) == (404, 404, "unauthenticated", "")
