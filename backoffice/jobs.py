"""RQ entry points of the back office: thin, each calls one service."""

from __future__ import annotations

from backoffice.services.rollup import sales_rollup_refresh
from posinv.services.runs import job_run

ROLLUP_JOB = "reports-rollup"


def reports_rollup_job() -> dict:
    """The scheduled incremental rollup; one run at a time (lease)."""
    with job_run(ROLLUP_JOB, lease_seconds=1800) as counts:
        if counts is None:
            return {"skipped": True}
        result = sales_rollup_refresh()
        counts.update(days=result.days, rebuilt=result.rebuilt, complete_through=str(result.complete_through))
        return dict(counts)
