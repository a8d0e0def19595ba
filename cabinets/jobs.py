"""RQ entry points of the cabinets app: thin, idempotent, each calls one service."""
from __future__ import annotations

from cabinets.models import WeighingCabinet
from cabinets.services.pull import MAX_PAGES, cabinet_pull
from posinv.services.runs import job_run


def pull_lease_seconds(cabinet: WeighingCabinet) -> float:
    """Longer than the slowest full pull (every page taking the whole timeout,
    plus applying it), so a second worker never overlaps a live one."""
    return cabinet.pull_timeout_seconds * (MAX_PAGES + 1) + 60


def cabinet_pull_job(*, cabinet_id: int, progress=None) -> dict | None:
    """Pull one cabinet's readings from its vendor, under a per-cabinet lease;
    the run (counts or error) is recorded as a JobRun. Returns the counts, or
    None when the cabinet is gone or another worker holds the lease."""
    cabinet = WeighingCabinet.objects.filter(pk=cabinet_id, active=True).first()
    if cabinet is None:
        return None
    with job_run("cabinet_pull", cabinet.code, lease_seconds=pull_lease_seconds(cabinet)) as counts:
        if counts is None:
            return None
        result = cabinet_pull(cabinet=cabinet, progress=progress)
        counts.update(result.counts, pages=result.pages)
        return dict(counts)
