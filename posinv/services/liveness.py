"""Dead work, found and cleared: job runs whose process stopped sending
heartbeats are marked failed (their leases freed), and RQ workers silent
for POSINV_DEAD_AFTER_SECONDS leave the registry (their job freed). The
scheduler offers this whenever it sees either (posinv/schedules.py), and
every `run_worker` does it as it starts, so a killed worker's work resumes
as soon as any worker runs."""
from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from posinv.queueing import redis_connection
from posinv.services.runs import job_runs_abandon_dead, job_runs_dead

logger = logging.getLogger(__name__)


def dead_work_exists() -> bool:
    """Cheap check for the scheduler tick: one indexed query, and with RQ
    one pipelined read of the workers' heartbeats (skipped while Redis is down)."""
    if job_runs_dead(now=timezone.now()).exists():
        return True
    if settings.POSINV_JOBS_INLINE:
        return False
    from rq import Worker

    from posinv.worker import REDIS_ERRORS, worker_liveness

    try:
        connection = redis_connection()
        workers = Worker.all(connection=connection)
        return any(not live.alive for live in worker_liveness(workers, connection=connection).values())
    except REDIS_ERRORS:
        return False


def dead_work_sweep() -> dict:
    """Abandon dead runs and clear dead workers; returns what was done."""
    runs = job_runs_abandon_dead()
    workers: list[str] = []
    if not settings.POSINV_JOBS_INLINE:
        from posinv.worker import rq_dead_workers_clear

        workers = rq_dead_workers_clear(connection=redis_connection())
    return {"runs_abandoned": [run.pk for run in runs], "workers_cleared": workers}
