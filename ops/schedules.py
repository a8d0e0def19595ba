"""What the ops app needs run periodically: the ledger verification, every
POSINV_VERIFY_LEDGER_HOURS (default 24; 0 turns it off). When it is due is
the scheduler's one rule (posinv/scheduling.py)."""
from __future__ import annotations

from django.conf import settings

from ops.selectors import LEDGER_VERIFY_JOB
from posinv.models import JobRun
from posinv.scheduling import Due

# The subject ledger_verify records its runs under (posinv/services/verification.py).
LEDGER_SUBJECT = "ledger"


def ops_due(*, now):
    hours = float(getattr(settings, "POSINV_VERIFY_LEDGER_HOURS", 24))
    if hours <= 0:
        return
    last = (
        JobRun.objects.filter(name=LEDGER_VERIFY_JOB).order_by("-started_at")
        .values_list("started_at", flat=True).first()
    )
    yield Due(key="verify-ledger", func="ops.jobs.ledger_verify_job", queue="low", ttl=3600,
              interval_seconds=hours * 3600, run=(LEDGER_VERIFY_JOB, LEDGER_SUBJECT), last_run_at=last)
