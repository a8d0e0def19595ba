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


# Wake-ups while Redis is down: the first failure is logged, later ones are
# counted and skipped without a round trip until a retry is due.
_wake_outage = {"since": None, "retry_at": 0.0, "skipped": 0, "logged_at": 0.0}


def enqueue_wake(func_path: str, **kwargs):
    """`enqueue` for a wake-up that something else backs up (the outbox
    sweep, the stack's periodic sweep): if Redis is unreachable it is
    skipped, never raised. A sale during a Redis outage must neither fail
    nor wait on Redis nor log a traceback: the first failed wake-up logs one
    warning line; while Redis stays down, wake-ups skip the connection
    attempt for POSINV_REDIS_RETRY_SECONDS and are counted in a reminder at
    most once a minute; the first one that gets through logs that Redis is back."""
    import redis

    now = time.monotonic()
    outage = _wake_outage
    if outage["since"] is not None and now < outage["retry_at"]:
        outage["skipped"] += 1
        if now - outage["logged_at"] >= 60:
            outage["logged_at"] = now
            logger.warning("Redis still unreachable after %.0f s: %d wake-ups not sent; the outbox sweep "
                           "delivers their changes once it is back", now - outage["since"], outage["skipped"])
        return None
    try:
        job = enqueue(func_path, **kwargs)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        outage["retry_at"] = now + float(getattr(settings, "POSINV_REDIS_RETRY_SECONDS", 5))
        if outage["since"] is None:
            outage.update(since=now, skipped=0, logged_at=now)
            logger.warning("Redis unreachable, wake-up %s not sent (%s: %s); the change waits in the database "
                           "and the outbox sweep delivers it once Redis is back", func_path,
                           type(exc).__name__, str(exc).strip()[:200])
        else:
            outage["skipped"] += 1
        return None
    if outage["since"] is not None:
        logger.warning("Redis reachable again after %.0f s (%d wake-ups were not sent meanwhile)",
                       now - outage["since"], outage["skipped"])
        outage.update(since=None, retry_at=0.0, skipped=0)
    return job


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
