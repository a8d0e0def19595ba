"""/healthz (database, migrations, Redis when configured: 200 or 503 naming
the failing part) and /metrics (Prometheus text format, parsed here with
the official parser)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from prometheus_client.parser import text_string_to_metric_families

from carts.models import ExternalStore, StackEntry
from ops import views
from pos.models import SyncEntry
from posinv.models import JobRun
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article
from tests.ops.conftest import ago
from tests.pos.factories import make_register
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_migration_check(monkeypatch):
    monkeypatch.setattr(views, "_migrations_ok", False)


def test_healthz_is_200_with_every_check_ok(client, settings):
    settings.REDIS_URL = ""

    answer = client.get("/healthz")

    body = answer.json()
    assert answer.status_code == 200
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "not configured"}
    assert "errors" not in body


@pytest.mark.redis
def test_healthz_checks_a_configured_redis(client, redis_conn):
    answer = client.get("/healthz")

    assert answer.status_code == 200
    assert answer.json()["checks"]["redis"] == "ok"


def test_healthz_is_503_naming_redis_when_it_is_configured_but_unreachable(client, settings):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = dead
    settings.RQ_QUEUES = {name: {"URL": dead} for name in settings.RQ_QUEUE_NAMES}

    answer = client.get("/healthz")

    body = answer.json()
    assert answer.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "failed"}
    assert list(body["errors"]) == ["redis"]
    assert body["errors"]["redis"].startswith("unreachable: ")
    assert "refused" in body["errors"]["redis"].lower()


def test_healthz_is_503_naming_an_unapplied_migration(client, settings):
    settings.REDIS_URL = ""
    # The app's newest migration: forgetting an older one while a newer is
    # recorded would leave Django's plan (and so /healthz) satisfied.
    (_, newest), = MigrationLoader(connection).graph.leaf_nodes("pos")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'pos' AND name = %s", [newest])

    answer = client.get("/healthz")

    body = answer.json()
    assert answer.status_code == 503
    assert body["checks"]["migrations"] == "failed"
    assert body["errors"] == {"migrations": f"1 unapplied: pos.{newest}"}


def test_healthz_answers_get_only(client):
    assert client.post("/healthz").status_code == 405


def _families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _samples(family) -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_metrics_parse_as_prometheus_text_with_the_exact_figures(client, store, settings):
    settings.POSINV_METRICS_TOKEN = ""
    article = make_article(sku="A-1")
    register = make_register(code="R1", location=store)
    SyncEntry.objects.create(register=register, direction="in", entry_no=2, table="customer",
                             record_id="customer:2", record={}, record_hash="x", state="waiting")
    SyncEntry.objects.create(register=register, direction="in", entry_no=1, table="customer",
                             record_id="customer:1", record={}, record_hash="y", state="failed")
    SyncEntry.objects.filter(entry_no=2).update(created_at=ago(seconds=120))
    shop = ExternalStore.objects.create(code='we"b', name="Web", platform="webhook", url="https://s.example")
    StackEntry.objects.create(store=shop, article=article, quantity=4, next_attempt_at=ago(seconds=1),
                              last_response="HTTP 429 Too Many Requests")
    stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"m{i}", sku="A-1", location_id=store.pk,
                                     quantity=Decimal(1)) for i in range(10)],
                     origin=StockOrigin("user", "clerk"))
    JobRun.objects.create(name="verify_ledger", subject="ledger", status="succeeded", counts={"drifting": 0})

    answer = client.get("/metrics")

    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = _families(answer.content.decode())
    assert _samples(families["posinv_web_stack_depth"]) == {(("store", 'we"b'),): 1.0}
    assert _samples(families["posinv_web_stack_throttled"]) == {(("store", 'we"b'),): 1.0}
    assert _samples(families["posinv_web_stack_failed"]) == {(("store", 'we"b'),): 0.0}
    assert _samples(families["posinv_sync_entries_pending"]) == {(("register", "R1"),): 1.0}
    assert _samples(families["posinv_sync_entries_failed"]) == {(("register", "R1"),): 1.0}
    oldest = _samples(families["posinv_sync_oldest_pending_seconds"])[(("register", "R1"),)]
    assert 120 <= oldest < 125
    assert _samples(families["posinv_stock_moves_per_minute"]) == {(): 2.0}  # 10 moves over 5 minutes
    assert _samples(families["posinv_ledger_drifting_pairs"]) == {(): 0.0}
    assert families["posinv_propagation_lag_seconds"].type == "gauge"
    assert _samples(families["posinv_health_status"]) == {
        (("section", "registers"),): 2.0, (("section", "cabinets"),): 0.0, (("section", "stores"),): 1.0,
        (("section", "ledger"),): 0.0, (("section", "queues"),): 0.0, (("section", "schedules"),): 0.0,
        (("section", "changes"),): 0.0,
    }
    for family in families.values():
        assert family.documentation, f"{family.name} has no HELP"


def test_metrics_report_propagation_lag_of_sent_cart_records(client, db):
    article = make_article(sku="A-1")
    shop = ExternalStore.objects.create(code="web", name="Web", platform="webhook", url="https://s.example")
    for seconds in (2, 6):
        entry = StackEntry.objects.create(store=shop, article=article, quantity=1, next_attempt_at=ago(seconds=1),
                                          state="sent", sent_quantity=1)
        StackEntry.objects.filter(pk=entry.pk).update(created_at=ago(seconds=seconds + 10), sent_at=ago(seconds=10))

    families = _families(client.get("/metrics").content.decode())

    lag = _samples(families["posinv_propagation_lag_seconds"])
    assert lag[(("path", "web_stack"), ("stat", "avg"))] == pytest.approx(4.0, abs=0.01)
    assert lag[(("path", "web_stack"), ("stat", "max"))] == pytest.approx(6.0, abs=0.01)
    assert (("path", "register"), ("stat", "avg")) not in lag  # no register receipts in the window


def test_metrics_with_a_token_refuse_a_scraper_without_it(client, settings, db):
    settings.POSINV_METRICS_TOKEN = "s3cret-scrape"

    refused = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape")

    assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
    assert b"s3cret" not in refused.content
    assert "posinv_web_stack_depth" in _families(allowed.content.decode())
