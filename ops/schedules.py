"""What the ops app needs run periodically: the ledger verification, every
POSINV_VERIFY_LEDGER_HOURS (default 24; 0 turns it off)."""
from __future__ import annotations

from django.conf import settings

from ops.selectors import LEDGER_VERIFY_JOB
from posinv.models import JobRun
from posinv.scheduling import Due, is_due


def ops_due(*, now):
    hours = float(getattr(settings, "POSINV_VERIFY_LEDGER_HOURS", 24))
    if hours <= 0:
        return
    last = (
        JobRun.objects.filter(name=LEDGER_VERIFY_JOB).order_by("-started_at")
        .values_list("started_at", flat=True).first()
    )
    if is_due(last, hours * 3600, now):
        yield Due(key="verify-ledger", func="ops.jobs.ledger_verify_job", queue="low", ttl=3600)
