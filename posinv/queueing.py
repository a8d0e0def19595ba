"""The one way to start background work.

With REDIS_URL set, `enqueue` puts a job on an RQ queue (django-rq) for the
`rqworker` processes; without it (the embedded default, and the test suite)
the job runs in-process at once. A `unique_key` makes enqueueing idempotent:
while a job with that key is waiting, enqueueing it again does nothing."""
from __future__ import annotations

import logging

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

PENDING_PREFIX = "posinv:pending:"


def redis_connection():
    """The Redis connection behind the RQ queues (None in inline mode)."""
    if settings.POSINV_JOBS_INLINE:
        return None
    import django_rq

    return django_rq.get_connection("default")


def enqueue(
    func_path: str,
    *,
    queue: str = "default",
    unique_key: str | None = None,
    clear: str = "start",
    ttl: int = 600,
    **kwargs,
):
    """Run `func_path(**kwargs)` in the background (or now, inline).

    `unique_key`: at most one waiting job per key. `clear="start"` frees the
    key when the job starts (a wake-up: a change during the run schedules
    another run); `clear="end"` keeps it until the job ends (a scheduled run
    is not queued again while it runs). `ttl` bounds how long a key can
    block if a worker dies holding it. Inside a transaction, call it from
    `transaction.on_commit` so a job never sees uncommitted rows."""
    if settings.POSINV_JOBS_INLINE:
        return import_string(func_path)(**kwargs)
    import django_rq

    connection = redis_connection()
    if unique_key:
        if not connection.set(PENDING_PREFIX + unique_key, "1", nx=True, ex=ttl):
            return None
        # RQ reads a `kwargs=` keyword as the job's keyword arguments, so
        # ours are nested inside it.
        return django_rq.get_queue(queue).enqueue(
            run_unique,
            kwargs={"unique_key": unique_key, "clear": clear, "func_path": func_path, "kwargs": kwargs},
            job_id=f"posinv-{unique_key}".replace(":", "-"),
            result_ttl=60,
            failure_ttl=24 * 3600,
        )
    return django_rq.get_queue(queue).enqueue(
        run_path, kwargs={"func_path": func_path, "kwargs": kwargs}, result_ttl=60
    )


def run_path(*, func_path: str, kwargs: dict):
    """RQ entry point: import and call a job function."""
    return import_string(func_path)(**kwargs)


def run_unique(*, unique_key: str, clear: str, func_path: str, kwargs: dict):
    """RQ entry point for a deduplicated job: free its key (at start or end)."""
    connection = redis_connection()
    if clear == "start":
        connection.delete(PENDING_PREFIX + unique_key)
    try:
        return import_string(func_path)(**kwargs)
    finally:
        if clear == "end":
            connection.delete(PENDING_PREFIX + unique_key)
