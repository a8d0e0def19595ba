"""`manage.py run_scheduler`: the scheduler loop of `make run`.

Every POSINV_SCHEDULER_TICK_SECONDS it calls scheduler_tick, which enqueues
what is due under deterministic keys, so two schedulers running by mistake
still queue each run once. SIGTERM or SIGINT stops it after the current tick."""

from __future__ import annotations

import logging
import signal
import threading

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
        try:
            while not stop.is_set():
                try:
                    offered = scheduler_tick()
                    if offered:
                        logger.info("tick %d: %s", ticks, ", ".join(offered))
                except Exception:
                    # A database hiccup must not end the loop: the next tick retries.
                    logger.exception("scheduler tick failed")
                finally:
                    close_old_connections()
                ticks += 1
                stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"scheduler stopped after {ticks} ticks")
