"""The ledger's own check, recorded: every (article, location) level must
equal the sum of its moves. Each run is a JobRun named "verify_ledger", which
the sync-health dashboard shows (ops/), whoever started it: the scheduler,
the dashboard's button or `manage.py verify_ledger`."""
from __future__ import annotations

from posinv.selectors import Drift, ledger_drift
from posinv.services.runs import job_run

LEDGER_VERIFY_JOB = "verify_ledger"


class LedgerDrift(Exception):
    """Pairs whose level differs from the sum of their moves; the run is
    recorded as failed with the first of them."""

    def __init__(self, drifting: list[Drift], *, sample: int = 20):
        self.drifting = drifting
        shown = "; ".join(
            f"{d.sku} @ {d.location_code}: on_hand {d.on_hand} != moves {d.moves_sum}" for d in drifting[:sample]
        )
        super().__init__(f"{len(drifting)} drifting pairs: {shown}")


def ledger_verify() -> list[Drift]:
    """Check every pair and record the run; returns the drifting pairs
    (empty when the ledger is true). Drift marks the run failed."""
    try:
        with job_run(LEDGER_VERIFY_JOB, "ledger") as counts:
            drifting = list(ledger_drift())
            counts["drifting"] = len(drifting)
            if drifting:
                raise LedgerDrift(drifting)
    except LedgerDrift as drift:
        return drift.drifting
    return []
