"""What the cabinets app needs run periodically: each pulling cabinet's
vendor pull, every `interval_seconds` (default 600)."""
from __future__ import annotations

from cabinets.jobs import pull_lease_seconds
from cabinets.models import WeighingCabinet
from posinv.scheduling import Due, is_due


def cabinets_due(*, now):
    """A pull for each active cabinet with a vendor endpoint whose interval has
    passed since its last pull, unless the vendor's Retry-After still holds."""
    cabinets = WeighingCabinet.objects.filter(active=True).exclude(pull_url="").only(
        "pk", "code", "last_pull_at", "interval_seconds", "pull_timeout_seconds", "pull_blocked_until"
    )
    for cabinet in cabinets:
        if cabinet.pull_blocked_until is not None and cabinet.pull_blocked_until > now:
            continue
        if is_due(cabinet.last_pull_at, cabinet.interval_seconds, now):
            yield Due(
                key=f"cabinet-pull:{cabinet.code}",
                func="cabinets.jobs.cabinet_pull_job",
                kwargs={"cabinet_id": cabinet.pk},
                # The queue key must outlive a slow run, or the next tick would queue a second one.
                ttl=int(pull_lease_seconds(cabinet)),
            )
