"""posinv's RQ worker: every job starts and ends with Django's connection
hygiene, the worker proves it is alive (and can reach the database) with a
heartbeat of its own, and dead workers are found and cleared.

Why: RQ knows nothing of Django's database connections. A worker opened one
connection at its first job and used it forever, so after a PostgreSQL
restart (or `pg_terminate_backend`) every later job failed with "the
connection is closed" until someone restarted the worker. Django's web
request cycle calls `close_old_connections()` before and after each request;
`PosinvWorker.perform_job` does the same around each job, so a dead
connection is discarded and the next query opens a fresh one
(CONN_HEALTH_CHECKS in config/settings.py checks a reused one first).

A SimpleWorker does not heartbeat RQ while a job runs, so a worker killed
with SIGKILL stayed "busy" in RQ's registry for the job's timeout plus a
minute (16 minutes here). The heartbeat thread (posinv/heartbeat.py) stamps
`posinv_beat` and `posinv_database` on the worker's Redis record every
POSINV_HEARTBEAT_SECONDS, busy or idle; `worker_liveness` reads them, and
`rq_dead_workers_clear` removes a worker silent for POSINV_DEAD_AFTER_SECONDS
from the registry and frees the job it held.

`manage.py run_worker` (the Procfile's and systemd's worker) runs this class
and keeps it going through Redis outages."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import redis
from django.db import close_old_connections, connection
from django.utils import timezone
from rq.worker import SimpleWorker

from posinv.heartbeat import dead_after_seconds, heartbeat_register, heartbeat_unregister
from posinv.queueing import PENDING_PREFIX

logger = logging.getLogger("posinv.worker")

BEAT_FIELD = "posinv_beat"
DATABASE_FIELD = "posinv_database"
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class _RedisLossIsOneLine(logging.Filter):
    """A Redis outage is an outage, not a bug, and it is said in a few lines.

    RQ logs a connection lost in its main loop as "found an unhandled
    exception, quitting..." with a traceback: one warning line instead
    (run_worker reconnects). While idle it retries by itself and logs
    "could not connect to Redis instance" about once a second (its dequeue
    loop and its pub/sub thread): the first is kept, the rest are dropped but
    for a reminder a minute, and the first other line of the worker after
    them is preceded by one saying that Redis is back."""

    REMIND_SECONDS = 60.0

    def __init__(self):
        super().__init__()
        self.lost_since: float | None = None
        self.reminded_at = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], REDIS_ERRORS):
            error = record.exc_info[1]
            record.msg = "Redis connection lost (%s: %s); the worker reconnects when Redis is back"
            record.args = (type(error).__name__, str(error).strip()[:200])
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        now = time.monotonic()
        if "could not connect to Redis instance" in str(record.msg):
            if self.lost_since is None:
                self.lost_since = self.reminded_at = now
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                return True
            if now - self.reminded_at < self.REMIND_SECONDS:
                return False
            self.reminded_at = now
            record.msg, record.args = "Redis still unreachable after %.0f s; the worker keeps trying", (
                now - self.lost_since,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        if self.lost_since is not None:
            lost_for, self.lost_since = now - self.lost_since, None
            logger.warning("Redis is back after %.0f s; the worker resumes", lost_for)
        return True


logging.getLogger("rq.worker").addFilter(_RedisLossIsOneLine())


def database_probe() -> str:
    """"ok", or why this process cannot use the database."""
    try:
        close_old_connections()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        connection.close()
        return f"failed: {type(exc).__name__}: {str(exc).strip()[:200]}"
    return "ok"


class PosinvWorker(SimpleWorker):
    """SimpleWorker (no fork per job) with Django's connection hygiene around
    every job and a liveness heartbeat."""

    # RQ's own longest wait between attempts to reach Redis while idle
    # (default 60 s): shorter, so the queues drain within seconds of an
    # outage's end; an attempt is one refused TCP connect, and its log line
    # is said once (_RedisLossIsOneLine).
    max_connection_wait_time = 5.0

    # Set by SIGTERM/SIGINT: RQ ends its loop the same way for a stop request
    # and for a lost Redis; run_worker must tell them apart.
    posinv_stop_requested = False

    def request_stop(self, signum, frame):
        self.posinv_stop_requested = True
        super().request_stop(signum, frame)

    def perform_job(self, job, queue, execution) -> bool:
        # A connection that died since the last job (database restart,
        # terminated backend) or outlived CONN_MAX_AGE is dropped here, and
        # the job's first query opens a fresh one.
        close_old_connections()
        try:
            return super().perform_job(job, queue, execution)
        finally:
            close_old_connections()

    def bootstrap(self, *args, **kwargs):
        super().bootstrap(*args, **kwargs)
        heartbeat_register(f"rq-worker:{self.name}", self.posinv_beat)
        self.posinv_beat()

    def teardown(self):
        heartbeat_unregister(f"rq-worker:{self.name}")
        super().teardown()

    def posinv_beat(self) -> None:
        """Stamp this worker's Redis record: alive now, and whether it can use the database."""
        database = database_probe()
        previous = getattr(self, "_posinv_database", "ok")
        if database != "ok" and previous == "ok":
            logger.warning("worker %s cannot use the database: %s", self.name, database)
        elif database == "ok" and previous != "ok":
            logger.warning("worker %s reaches the database again", self.name)
        self._posinv_database = database
        try:
            # Only while RQ's record exists: recreating a deleted one would
            # leave a husk outside the registry.
            if self.connection.exists(self.key):
                self.connection.hset(self.key, mapping={BEAT_FIELD: timezone.now().isoformat(),
                                                        DATABASE_FIELD: database})
        except REDIS_ERRORS:
            pass  # the work loop reports a Redis outage; a heartbeat cannot be sent meanwhile


@dataclass(frozen=True)
class Liveness:
    alive: bool
    heard_seconds_ago: float | None  # None: the worker does not send posinv heartbeats
    database: str  # "ok", "failed: ...", or "" when not reported


def worker_liveness(workers, *, connection, now: datetime | None = None) -> dict[str, Liveness]:
    """Per worker name: alive (a posinv heartbeat within POSINV_DEAD_AFTER_SECONDS),
    how long since it was heard, and what it says of the database. One
    pipelined Redis round trip. A worker without posinv heartbeats (a plain
    `rqworker`) cannot be judged and counts as alive."""
    now = now or timezone.now()
    workers = list(workers)
    with connection.pipeline() as pipe:
        for worker in workers:
            pipe.hmget(worker.key, BEAT_FIELD, DATABASE_FIELD)
        rows = pipe.execute()
    found = {}
    for worker, (beat, database) in zip(workers, rows, strict=True):
        database = database.decode() if isinstance(database, bytes) else (database or "")
        if not beat:
            found[worker.name] = Liveness(alive=True, heard_seconds_ago=None, database=database)
            continue
        heard = max(0.0, (now - datetime.fromisoformat(beat.decode() if isinstance(beat, bytes) else beat))
                    .total_seconds())
        found[worker.name] = Liveness(alive=heard <= dead_after_seconds(), heard_seconds_ago=heard,
                                      database=database)
    return found


def rq_dead_workers_clear(*, connection, now: datetime | None = None) -> list[str]:
    """Remove workers silent for POSINV_DEAD_AFTER_SECONDS from RQ's registry
    and free the job each held: deleted from RQ, and its
    "already queued" key deleted so the scheduler queues that work again now
    rather than when the key's TTL runs out. Returns the names removed."""
    from rq import Worker

    workers = Worker.all(connection=connection)
    liveness = worker_liveness(workers, connection=connection, now=now)
    cleared = []
    for worker in workers:
        if liveness[worker.name].alive:
            continue
        job = worker.get_current_job()
        worker.register_death()
        cleared.append(worker.name)
        freed = ""
        if job is not None:
            # Deleted, not failed: its work is recorded where people look (the
            # job run, marked abandoned) and is done again by the next run; a
            # copy in RQ's failed registry would keep Sync health amber for a day.
            unique_key = (job.kwargs or {}).get("unique_key")
            job.started_job_registry.remove_executions(job)
            job.delete()
            if unique_key:
                connection.delete(PENDING_PREFIX + unique_key)
            freed = f"; its job {job.id} is deleted and runs again when next due"
        logger.warning("worker %s (%s, pid %s) silent for %.0f s: removed as dead%s", worker.name,
                       worker.hostname, worker.pid, liveness[worker.name].heard_seconds_ago or 0, freed)
    return cleared
