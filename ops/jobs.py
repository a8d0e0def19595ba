"""RQ entry points of the ops app: thin, each calls one service."""
from __future__ import annotations

from posinv.services.verification import ledger_verify


def ledger_verify_job() -> dict:
    """The scheduled ledger check. Drift is recorded on the run and returned,
    not raised (RQ would otherwise park the job in its failed registry as a
    crash)."""
    return {"drifting": len(ledger_verify())}
