"""What the retail app needs run periodically (a `schedule_providers` extension)."""

from __future__ import annotations

from datetime import timedelta

from posinv.models import JobRun
from posinv.scheduling import Due

PRUNE_EVERY = timedelta(days=1)


def retail_due(*, now):
    """The idempotency-record prune, once a day."""
    if not JobRun.objects.filter(name="live_sales_prune", started_at__gt=now - PRUNE_EVERY).exists():
        yield Due(key="live-sales-prune", func="retail.jobs.live_sales_prune_job", queue="low", ttl=3600)
