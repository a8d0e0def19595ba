"""What the retail app needs run periodically (a `schedule_providers` extension)."""

from __future__ import annotations

from datetime import timedelta

from posinv.models import JobRun
from posinv.scheduling import Due

PRUNE_EVERY = timedelta(days=1)
PRUNE_JOB = "live_sales_prune"


def retail_due(*, now):
    """The idempotency-record prune, once a day (the scheduler's one rule decides when)."""
    last = (
        JobRun.objects.filter(name=PRUNE_JOB).order_by("-started_at").values_list("started_at", flat=True).first()
    )
    yield Due(key="live-sales-prune", func="retail.jobs.live_sales_prune_job", queue="low", ttl=3600,
              interval_seconds=PRUNE_EVERY.total_seconds(), run=(PRUNE_JOB, ""), last_run_at=last)
