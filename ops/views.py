"""The sync-health dashboard (in the admin), /healthz and /metrics. Thin:
the figures come from ops.selectors."""
from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from ops.charts import activity_chart_svg
from ops.metrics import metrics_render
from ops.selectors import activity_24h, register_sync_check, sync_health_get, sync_problems
from posinv.queueing import enqueue

# Who may see the sync health: it shows every register, cabinet and store of
# the chain and the job runs, so the permission to view job runs decides.
DASHBOARD_PERMISSION = "posinv.view_jobrun"


def may_see_sync_health(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(DASHBOARD_PERMISSION))


def _dashboard(request: HttpRequest):
    if not may_see_sync_health(request.user):
        raise PermissionDenied(f"The sync health needs the permission {DASHBOARD_PERMISSION}.")
    health = sync_health_get()
    context = {
        **admin.site.each_context(request),
        "title": "Sync health",
        "health": health,
        "chart": activity_chart_svg(buckets=activity_24h(now=health.now)),
        "refresh_seconds": int(getattr(settings, "POSINV_DASHBOARD_REFRESH_SECONDS", 15)),
    }
    return TemplateResponse(request, "ops/dashboard.html", context)


def _verify_ledger(request: HttpRequest):
    if not may_see_sync_health(request.user):
        raise PermissionDenied(f"Verifying the ledger needs the permission {DASHBOARD_PERMISSION}.")
    enqueue("ops.jobs.ledger_verify_job", queue="low", unique_key="verify-ledger", clear="end", ttl=3600)
    messages.success(request, "Ledger verification started; its result shows here when it has run.")
    return redirect("ops:dashboard")


dashboard = admin.site.admin_view(never_cache(require_GET(_dashboard)))
verify_ledger = admin.site.admin_view(require_POST(_verify_ledger))

# Once every migration is applied it stays so for this process's life: a
# positive answer is kept so a busy probe does not reload the migration graph.
_migrations_ok = False


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"unreachable: {str(exc).strip()[:200]}"
    return None


def _check_migrations() -> str | None:
    global _migrations_ok
    if _migrations_ok:
        return None
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return f"cannot read migrations: {str(exc).strip()[:200]}"
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return f"{len(plan)} unapplied: {names}" + (", ..." if len(plan) > 5 else "")
    _migrations_ok = True
    return None


def _check_redis() -> str | None:
    import redis

    url = settings.RQ_QUEUES["default"]["URL"]
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"unreachable: {str(exc).strip()[:200]}"
    return None


def _sync_links_absolute(request: HttpRequest, sync: dict) -> dict:
    for problem in sync["problems"]:
        problem["link"] = request.build_absolute_uri(problem["link"])
    return sync


def _check_workers() -> tuple[str, str | None]:
    """Do the workers work? Fails when a live worker reports that it cannot
    reach the database (every job it takes fails), or jobs wait and no live
    worker is there to run them. Dead workers (silent for
    POSINV_DEAD_AFTER_SECONDS) do not count as running."""
    import django_rq
    from rq import Worker

    from posinv.worker import worker_liveness

    try:
        connection = django_rq.get_connection("default")
        found = Worker.all(connection=connection)
        liveness = worker_liveness(found, connection=connection)
        live = [w for w in found if liveness[w.name].alive]
        for worker in live:
            database = liveness[worker.name].database
            if database not in ("", "ok"):
                return "failed", (f"worker {worker.name} on {worker.hostname} (pid {worker.pid}) cannot reach "
                                  f"the database: {database[:200]}")
        if not live:
            waiting = sum(django_rq.get_queue(name).count for name in settings.RQ_QUEUE_NAMES)
            dead = len(found)
            silent = f" ({dead} registered worker{'s' if dead != 1 else ''} stopped answering)" if dead else ""
            if waiting:
                return "failed", f"{waiting} jobs waiting and no live worker{silent}"
            return "none running", None
    except Exception as exc:  # Redis itself is reported by the redis check
        return "failed", f"cannot read the workers: {str(exc).strip()[:200]}"
    return "ok", None


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, every migration is applied, Redis
    (when configured) answers and the workers work (a live worker cannot
    reach the database, or jobs wait with no live worker: 503 `workers`);
    else 503 naming the failing part and why. `?scope=web` checks only what
    this web process needs (database, migrations, Redis): the proxy's health
    check, so a worker problem never takes the web out of rotation."""
    started = time.monotonic()
    checks: dict[str, str] = {}
    failures: dict[str, str] = {}
    db_error = _check_database()
    checks["database"] = "ok" if db_error is None else "failed"
    if db_error:
        failures["database"] = db_error
        checks["migrations"] = "unknown"
    else:
        migration_error = _check_migrations()
        checks["migrations"] = "ok" if migration_error is None else "failed"
        if migration_error:
            failures["migrations"] = migration_error
    if settings.REDIS_URL:
        redis_error = _check_redis()
        checks["redis"] = "ok" if redis_error is None else "failed"
        if redis_error:
            failures["redis"] = redis_error
    else:
        checks["redis"] = "not configured"
    if request.GET.get("scope") != "web" and settings.REDIS_URL and not settings.POSINV_JOBS_INLINE:
        if "redis" in failures:
            checks["workers"] = "unknown"
        else:
            checks["workers"], workers_error = _check_workers()
            if workers_error:
                failures["workers"] = workers_error
    body = {
        "status": "ok" if not failures else "unavailable",
        "checks": checks,
    }
    web_only = request.GET.get("scope") == "web"
    if not web_only and "database" not in failures and "migrations" not in failures:
        # Sync problems (a failing schedule, a run held for a person, a
        # cabinet whose readings are rejected) turn "sync" amber or red with
        # the reason and a link, but not the answer: this web process still
        # serves, and a load balancer must not take it out for a store being down.
        try:
            body["sync"] = _sync_links_absolute(request, sync_problems())
        except Exception as exc:
            body["sync"] = {"status": "unknown", "problems": [], "error": str(exc).strip()[:200]}
        # How the registers' synchronization goes (green / amber / red, why, and
        # where to look); informative too, like "sync".
        body["registers"] = register_sync_check()
    body["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    if failures:
        body["errors"] = failures
    return JsonResponse(body, status=200 if not failures else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With POSINV_METRICS_TOKEN set, the scraper
    must send `Authorization: Bearer <token>`."""
    token = getattr(settings, "POSINV_METRICS_TOKEN", "")
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("metrics need Authorization: Bearer <POSINV_METRICS_TOKEN>\n", status=401,
                                content_type="text/plain; charset=utf-8")
    body = metrics_render(health=sync_health_get())
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
