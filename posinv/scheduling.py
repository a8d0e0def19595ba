"""The scheduler tick: ask every schedule provider (posinv/plugins.py)
what is due now and enqueue it under a deterministic key, so a run is never
queued twice. Frequencies live on the objects in the database."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.module_loading import import_string

from posinv.plugins import extension_paths
from posinv.queueing import enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Due:
    """A job that should run now: `key` names the run (e.g. "register-sync:R1")."""

    key: str
    func: str
    kwargs: dict = field(default_factory=dict)
    queue: str = "default"
    ttl: int = 900


def is_due(last_run: datetime | None, interval_seconds: float, now: datetime) -> bool:
    return last_run is None or last_run + timedelta(seconds=interval_seconds) <= now


def scheduler_tick(*, now: datetime | None = None) -> list[str]:
    """Enqueue everything due; returns the keys offered (deduplicated by the queue)."""
    now = now or timezone.now()
    offered = []
    for path in extension_paths("schedule_providers"):
        try:
            dues = list(import_string(path)(now=now))
        except Exception:
            logger.exception("schedule provider %s failed", path)
            continue
        for due in dues:
            try:
                enqueue(due.func, queue=due.queue, unique_key=due.key, clear="end", ttl=due.ttl, **due.kwargs)
            except Exception:
                # Inline (no Redis) the job runs here: its failure is recorded
                # by the job itself and must not keep the other due jobs from
                # running. With Redis this is an enqueue error (Redis down).
                logger.exception("due job %s failed", due.key)
                continue
            offered.append(due.key)
    return offered
