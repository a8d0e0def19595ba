"""RQ entry points of the ops app: thin, each calls one service."""
from __future__ import annotations

from ops.services import LedgerDrift, ledger_verification_run


def ledger_verify_job() -> dict:
    """The scheduled ledger check; drift is recorded on the run, not re-raised
    (RQ would otherwise park the job in its failed registry as a crash)."""
    try:
        return ledger_verification_run()
    except LedgerDrift as exc:
        return {"drift": str(exc)[:500]}
