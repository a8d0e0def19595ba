"""Writes of the ops app: the recorded ledger verification."""
from __future__ import annotations

from ops.selectors import LEDGER_VERIFY_JOB
from posinv.selectors import ledger_drift
from posinv.services.runs import job_run


class LedgerDrift(Exception):
    """The ledger check found (article, location) pairs whose level differs
    from the sum of their moves; the run is recorded as failed with them."""


def ledger_verification_run(*, sample: int = 20) -> dict:
    """Check that every stock level equals the sum of its moves and record
    the run as a JobRun named "verify_ledger" (what the dashboard shows).

    Returns the counts; raises LedgerDrift, after recording the run as
    failed with the first `sample` drifting pairs, when any pair drifts."""
    with job_run(LEDGER_VERIFY_JOB, "ledger") as counts:
        drifting = []
        for drift in ledger_drift():
            drifting.append(drift)
        counts["drifting"] = len(drifting)
        if drifting:
            shown = "; ".join(
                f"{d.sku} @ {d.location_code}: on_hand {d.on_hand} != moves {d.moves_sum}" for d in drifting[:sample]
            )
            raise LedgerDrift(f"{len(drifting)} drifting pairs: {shown}")
        return dict(counts)
