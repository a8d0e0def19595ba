"""`manage.py run_scheduler`: the scheduler loop of `make run`.

Every POSINV_SCHEDULER_TICK_SECONDS it calls scheduler_tick, which enqueues
what is due under deterministic keys, so two schedulers running by mistake
still queue each run once. SIGTERM or SIGINT stops it after the current tick."""

from __future__ import annotations

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from posinv.scheduling import scheduler_tick

logger = logging.getLogger("posinv.scheduler")


class Command(BaseCommand):
    help = "Run the scheduler: a tick every POSINV_SCHEDULER_TICK_SECONDS until SIGTERM/SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one tick, then exit")
        parser.add_argument("--interval", type=float, default=None, help="seconds between ticks")

    def handle(self, *args, once: bool, interval: float | None, **options):
        interval = interval if interval is not None else settings.POSINV_SCHEDULER_TICK_SECONDS
        if once:
            offered = scheduler_tick()
            self.stdout.write(f"tick: {len(offered)} due {' '.join(offered)}".rstrip())
            return
        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"scheduler: a tick every {interval:g}s (SIGTERM/SIGINT stops)")
        self.stdout.flush()
        ticks = 0
        failing_since: float | None = None
        reminded_at = 0.0
        try:
            while not stop.is_set():
                try:
                    offered = scheduler_tick()
                    if failing_since is not None:
                        logger.warning("scheduler ticks succeed again after %.0f s", time.monotonic() - failing_since)
                        failing_since = None
                    if offered:
                        logger.info("tick %d: %s", ticks, ", ".join(offered))
                except Exception as exc:
                    # A database or Redis outage must not end the loop: the next
                    # tick retries. The first failure of an outage is logged whole,
                    # then one line a minute, not a traceback every tick.
                    now = time.monotonic()
                    if failing_since is None:
                        failing_since = reminded_at = now
                        logger.exception("scheduler tick failed")
                    elif now - reminded_at >= 60:
                        reminded_at = now
                        words = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                        logger.warning("scheduler ticks still failing after %.0f s: %s", now - failing_since, words)
                finally:
                    close_old_connections()
                ticks += 1
                stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"scheduler stopped after {ticks} ticks")
