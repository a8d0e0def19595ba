"""The one way to start background work.

With REDIS_URL set, `enqueue` puts a job on an RQ queue (django-rq) for the
`rqworker` processes; without it (the embedded default, and the test suite)
the job runs in-process at once. A `unique_key` makes enqueueing idempotent:
while a job with that key is waiting, enqueueing it again does nothing."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

PENDING_PREFIX = "posinv:pending:"

# One client (and so one connection pool) per Redis URL and process: django-rq
# builds a new client per call, which made every wake-up after a sale open a
# new TCP connection (about 1 ms of CPU each). redis-py pools reconnect after
# a Redis restart and start afresh in a forked child.
_clients: dict[str, object] = {}


def redis_connection():
    """The Redis connection behind the RQ queues (None in inline mode)."""
    if settings.POSINV_JOBS_INLINE:
        return None
    url = settings.RQ_QUEUES["default"]["URL"]
    client = _clients.get(url)
    if client is None:
        import django_rq

        client = _clients[url] = django_rq.get_connection("default")
    return client


def _queue(name: str):
    import django_rq

    return django_rq.get_queue(name, connection=redis_connection())


def enqueue(
    func_path: str,
    *,
    queue: str = "default",
    unique_key: str | None = None,
    clear: str = "start",
    ttl: int = 600,
    gather_seconds: float = 0,
    **kwargs,
):
    """Run `func_path(**kwargs)` in the background (or now, inline).

    `unique_key`: at most one waiting job per key. `clear="start"` frees the
    key when the job starts (a wake-up: a change during the run schedules
    another run); `clear="end"` keeps it until the job ends (a scheduled run
    is not queued again while it runs). `ttl` bounds how long a key can
    block if a worker dies holding it. `gather_seconds` (with
    `clear="start"`): the job waits that long at its start before freeing
    its key, so every wake-up in that time joins this one run instead of
    queueing the next (a busy till wakes the dispatcher per sale). Inside a transaction, call it from
    `transaction.on_commit` so a job never sees uncommitted rows."""
    if settings.POSINV_JOBS_INLINE:
        return import_string(func_path)(**kwargs)
    connection = redis_connection()
    if unique_key:
        if not connection.set(PENDING_PREFIX + unique_key, "1", nx=True, ex=ttl):
            return None
        # RQ reads a `kwargs=` keyword as the job's keyword arguments, so
        # ours are nested inside it.
        return _queue(queue).enqueue(
            run_unique,
            kwargs={
                "unique_key": unique_key,
                "clear": clear,
                "func_path": func_path,
                "kwargs": kwargs,
                "gather_seconds": gather_seconds,
            },
            job_id=f"posinv-{unique_key}".replace(":", "-"),
            result_ttl=60,
            failure_ttl=24 * 3600,
        )
    return _queue(queue).enqueue(
        run_path, kwargs={"func_path": func_path, "kwargs": kwargs}, result_ttl=60
    )


def run_path(*, func_path: str, kwargs: dict):
    """RQ entry point: import and call a job function."""
    return import_string(func_path)(**kwargs)


def run_unique(*, unique_key: str, clear: str, func_path: str, kwargs: dict, gather_seconds: float = 0):
    """RQ entry point for a deduplicated job: free its key (at start, after
    `gather_seconds`, or at the end)."""
    connection = redis_connection()
    if clear == "start":
        if gather_seconds > 0:
            # Wake-ups meanwhile find the key taken and are served by this run:
            # it reads its work after freeing the key, so none is missed.
            time.sleep(gather_seconds)
        connection.delete(PENDING_PREFIX + unique_key)
    try:
        return import_string(func_path)(**kwargs)
    finally:
        if clear == "end":
            connection.delete(PENDING_PREFIX + unique_key)
