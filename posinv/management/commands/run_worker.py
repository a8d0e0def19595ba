"""`manage.py run_worker [QUEUE ...]`: the worker of the Procfile, `make run`
and the systemd units (docs/operations.md).

An RQ worker (posinv.worker.PosinvWorker: Django's connection hygiene around
every job, a liveness heartbeat) that does not die with Redis. Plain
`rqworker` quits on the first Redis error ("found an unhandled exception,
quitting"), and under honcho one process's exit stops the whole site. Here
the worker's life ends, the command waits for Redis with a bounded backoff
(1, 2, 4 ... up to --max-backoff seconds, default 10), logging one line as the outage
starts, one each time the wait grows, one every ten minutes at the cap,
and one when Redis is back; then a fresh worker drains the queues. The sales
of the outage are safe meanwhile: their changes wait in the database and the
scheduler's sweeps queue them once Redis answers.

SIGTERM or SIGINT: the job in hand finishes (RQ's warm shutdown), then the
command exits 0; a second signal stops at once."""
from __future__ import annotations

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.db import connections

from posinv.worker import REDIS_ERRORS

logger = logging.getLogger("posinv.worker")

REMIND_AT_CAP_SECONDS = 600


class Command(BaseCommand):
    help = "Run an RQ worker on QUEUEs (default: high default low) that outlives Redis and database outages."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", default=["high", "default", "low"])
        parser.add_argument("--max-backoff", type=float, default=10.0,
                            help="longest wait between attempts to reach Redis (seconds, default 10)")
        parser.add_argument("--burst", action="store_true", help="drain the queues, then exit (tests, cron)")
        parser.add_argument("--name", default=None, help="worker name (default: random; unique per life)")

    def handle(self, *args, queues: list[str], max_backoff: float, burst: bool, name: str | None, **options):
        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()

        lives = 0
        while not stop.is_set():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, on_signal)  # RQ installs its own while a worker works
            worker = None
            try:
                worker = self._worker(queues, name=name, life=lives)
                self._clear_dead_work()
                lives += 1
                worker.work(burst=burst, logging_level="INFO")
            except REDIS_ERRORS as exc:
                # Starting (registering) or ending (unregistering) needs Redis too.
                logger.warning("worker: Redis unreachable (%s: %s)", type(exc).__name__, str(exc).strip()[:200])
            if stop.is_set() or burst or (worker is not None and worker.posinv_stop_requested):
                break
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, on_signal)
            if not self._wait_for_redis(stop, max_backoff=max_backoff):
                break
        self.stdout.write("worker stopped")

    def _worker(self, queues: list[str], *, name: str | None, life: int):
        from django_rq.utils import reset_db_connections
        from django_rq.workers import get_worker

        reset_db_connections()
        worker_name = f"{name}.{life}" if name and life else name
        return get_worker(*queues, worker_class="posinv.worker.PosinvWorker", name=worker_name)

    def _clear_dead_work(self) -> None:
        """Whatever a killed worker left (runs marked running, its registry
        entry, its job's "already queued" key) is cleared before this one works."""
        from posinv.services.liveness import dead_work_sweep

        try:
            done = dead_work_sweep()
            if done["runs_abandoned"] or done["workers_cleared"]:
                logger.warning("worker: cleared dead work at start: %s", done)
        except REDIS_ERRORS:
            raise
        except Exception as exc:  # the database may be down too: the worker still starts
            logger.warning("worker: dead-work sweep skipped (%s: %s)", type(exc).__name__, str(exc).strip()[:200])
        finally:
            connections.close_all()

    def _wait_for_redis(self, stop: threading.Event, *, max_backoff: float) -> bool:
        """Wait until Redis answers a PING (True) or a signal arrives (False)."""
        from posinv.queueing import redis_connection

        started = time.monotonic()
        wait, reminded = 1.0, started
        logger.warning("worker: Redis unreachable; retrying in %.0f s, then up to every %.0f s. Jobs wait: "
                       "changes stay in the database until Redis is back", wait, max_backoff)
        while not stop.wait(wait):
            try:
                redis_connection().ping()
            except REDIS_ERRORS as exc:
                if wait < max_backoff:
                    wait = min(wait * 2, max_backoff)
                    logger.warning("worker: Redis still unreachable after %.0f s (%s); next try in %.0f s",
                                   time.monotonic() - started, type(exc).__name__, wait)
                elif time.monotonic() - reminded >= REMIND_AT_CAP_SECONDS:
                    reminded = time.monotonic()
                    logger.warning("worker: Redis still unreachable after %.0f s; trying every %.0f s",
                                   time.monotonic() - started, wait)
                continue
            logger.warning("worker: Redis is back after %.0f s; the worker resumes", time.monotonic() - started)
            return True
        return False
