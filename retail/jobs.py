"""RQ entry points of the retail app: thin, each calls one service and records its run."""

from __future__ import annotations

from django.conf import settings

from posinv.services.runs import job_run
from retail.services.sales import live_sales_prune


def live_sales_prune_job() -> dict | None:
    """Forget live-sale idempotency records older than POSINV_LIVE_SALE_KEY_DAYS (default 30)."""
    with job_run("live_sales_prune", lease_seconds=600) as counts:
        if counts is None:
            return None
        counts["deleted"] = live_sales_prune(older_than_days=settings.POSINV_LIVE_SALE_KEY_DAYS)
        return counts
