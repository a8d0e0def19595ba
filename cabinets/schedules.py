"""What the cabinets app needs run periodically: each pulling cabinet's
vendor pull, every `interval_seconds` (default 600). When it is due is the
scheduler's one rule (posinv/scheduling.py): after a failure the interval
backs off, and the vendor's Retry-After (`pull_blocked_until`) holds it."""
from __future__ import annotations

from cabinets.jobs import pull_lease_seconds
from cabinets.models import WeighingCabinet
from posinv.scheduling import Due


def cabinets_due(*, now):
    """A pull schedule for each active cabinet with a vendor endpoint."""
    cabinets = WeighingCabinet.objects.filter(active=True).exclude(pull_url="").only(
        "pk", "code", "last_pull_at", "last_pull_error", "interval_seconds", "pull_timeout_seconds",
        "pull_blocked_until",
    )
    for cabinet in cabinets:
        yield Due(
            key=f"cabinet-pull:{cabinet.code}",
            func="cabinets.jobs.cabinet_pull_job",
            kwargs={"cabinet_id": cabinet.pk},
            # The queue key must outlive a slow run, or the next tick would queue a second one.
            ttl=int(pull_lease_seconds(cabinet)),
            interval_seconds=cabinet.interval_seconds,
            run=("cabinet_pull", cabinet.code),
            # last_pull_at is any attempt's time; only a clean one is a success.
            last_run_at=cabinet.last_pull_at if not cabinet.last_pull_error else None,
            not_before=cabinet.pull_blocked_until,
        )
