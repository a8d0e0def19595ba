"""What the core needs run periodically."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from posinv.models import StockChange
from posinv.scheduling import Due


def core_due(*, now):
    """A sweep of the change outbox whenever rows have waited longer than the
    sweep interval (a lost wake-up, or Redis was down at commit)."""
    cutoff = now - timedelta(seconds=settings.POSINV_CHANGES_SWEEP_SECONDS)
    if StockChange.objects.filter(created_at__lt=cutoff).exists():
        yield Due(key="changes-sweep", func="posinv.jobs.changes_dispatch_job", queue="high", ttl=120)


def liveness_due(*, now):
    """A sweep of dead work (posinv/services/liveness.py) whenever a run's
    process or an RQ worker has stopped sending heartbeats."""
    from posinv.services.liveness import dead_work_exists
    from posinv.services.runs import job_runs_abandon_dead

    # Dead runs are marked by the scheduler itself (one indexed query): with
    # no live worker left, a queued sweep would wait for one to start.
    job_runs_abandon_dead(now=now)
    if dead_work_exists():
        yield Due(key="dead-work-sweep", func="posinv.jobs.dead_work_sweep_job", queue="high", ttl=120)
