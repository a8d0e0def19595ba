"""Suite-wide fixtures. Tests marked `postgres` or `redis` skip with a reason
on a laptop without them, and fail under CI (CI=true), where a skip would
hide a missing service."""
from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import make_article, make_location

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Store credentials are encrypted at rest (posinv/crypto.py, issue 11): one
# fixed test key for this process and the servers and workers it starts
# (tests/support/processes.py passes it on), so what one writes the other
# reads; their SECRET_KEYs differ, so a key derived from it would not do.
os.environ.setdefault("POSINV_SECRET_KEY_ENCRYPTION", "ujAXQ0VHS6EgqcB-X2UoxoMKAt5-TLxf4_MCdO8mIe8=")


def _missing(marker: str) -> str | None:
    if marker == "postgres" and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if marker == "redis" and not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL=redis://..."
    return None


def pytest_runtest_setup(item):
    for marker in ("postgres", "redis"):
        if item.get_closest_marker(marker):
            reason = _missing(marker)
            if reason:
                if IN_CI:
                    pytest.fail(f"CI must not skip: {reason}")
                pytest.skip(reason)


@pytest.fixture
def redis_conn():
    """A clean Redis database of the suite's own; flushed before and after."""
    reason = _missing("redis")
    if reason:
        if IN_CI:
            pytest.fail(f"CI must not skip: {reason}")
        pytest.skip(reason)
    import redis

    conn = redis.Redis.from_url(settings.REDIS_URL)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def rq_mode(settings, redis_conn):
    """Jobs go to real RQ queues instead of running inline."""
    from posinv.services.changes import changes_wake_forget

    settings.POSINV_JOBS_INLINE = False
    changes_wake_forget()
    return redis_conn


@pytest.fixture
def store(db):
    return make_location(code="S1", name="Store 1")


@pytest.fixture
def article(db):
    return make_article(sku="A-1", name="Apple")


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="clerk", password="clerk-pass", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(staff_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture(autouse=True)
def _no_redis_outage_carried_over():
    """A wake-up that failed (a test with Redis stopped or a closed port)
    makes this process skip Redis for a few seconds (posinv.queueing); the
    next test in the same process must start without that outage."""
    from posinv import queueing

    queueing._wake_outage.update(since=None, retry_at=0.0, skipped=0, logged_at=0.0)
    yield


@pytest.fixture(autouse=True)
def _in_process_requests_keep_the_test_connection():
    """Requests sent straight to the WSGI application (schemathesis, werkzeug)
    fire request_started/finished, whose close_old_connections closes the
    connection that holds the test's transaction on PostgreSQL (autocommit is
    off inside it), so every later query fails with "the connection is
    closed". Django's test Client disconnects the handler the same way."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
