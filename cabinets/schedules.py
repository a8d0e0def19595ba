"""What the cabinets app needs run periodically: each pulling cabinet's
vendor pull, every `interval_seconds` (default 600)."""
from __future__ import annotations

from cabinets.models import WeighingCabinet
from posinv.scheduling import Due, is_due


def cabinets_due(*, now):
    """A pull for each active cabinet with a vendor endpoint whose interval has passed since its last pull."""
    cabinets = WeighingCabinet.objects.filter(active=True).exclude(pull_url="").values_list(
        "pk", "code", "last_pull_at", "interval_seconds", "pull_timeout_seconds"
    )
    for pk, code, last_pull_at, interval, timeout in cabinets:
        if is_due(last_pull_at, interval, now):
            yield Due(
                key=f"cabinet-pull:{code}",
                func="cabinets.jobs.cabinet_pull_job",
                kwargs={"cabinet_id": pk},
                ttl=int(max(120, timeout * 12)),
            )
