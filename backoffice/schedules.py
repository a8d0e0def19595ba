"""What the back office needs run periodically (a `schedule_providers`
extension): the sales rollup every POSINV_REPORTS_ROLLUP_MINUTES (default
5; 0 turns it off, the reports then read more raw lines but stay exact).
Not on a register node: reports run on the main system. When it is due is
the scheduler's one rule (posinv/scheduling.py)."""

from __future__ import annotations

from django.conf import settings

from backoffice.jobs import ROLLUP_JOB
from backoffice.models import RollupState
from backoffice.services.rollup import STATE
from posinv.scheduling import Due


def backoffice_due(*, now):
    minutes = float(getattr(settings, "POSINV_REPORTS_ROLLUP_MINUTES", 5))
    if minutes <= 0 or getattr(settings, "POSINV_NODE", "main") == "register":
        return
    last = RollupState.objects.filter(name=STATE).values_list("rolled_at", flat=True).first()
    yield Due(key="reports-rollup", func="backoffice.jobs.reports_rollup_job", queue="low", ttl=1800,
              interval_seconds=minutes * 60, run=(ROLLUP_JOB, ""), last_run_at=last)
