"""RQ entry points of the core: thin, idempotent, each calls one service."""
from __future__ import annotations

import json
import logging
import time

from posinv.services.changes import changes_dispatch

logger = logging.getLogger("posinv.jobs")


def changes_dispatch_job() -> int:
    """Hand the change outbox to its consumers (web stack, suggestions).

    Runs on every committed change, so it logs instead of writing a JobRun
    row per wake-up."""
    started = time.monotonic()
    handled = changes_dispatch()
    if handled:
        logger.info(
            json.dumps(
                {
                    "event": "job_run",
                    "job": "changes_dispatch",
                    "outcome": "succeeded",
                    "counts": {"changes": handled},
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                }
            )
        )
    return handled


def dead_work_sweep_job() -> dict:
    """Mark runs whose process died as failed and clear dead RQ workers
    (posinv/services/liveness.py)."""
    from posinv.services.liveness import dead_work_sweep

    return dead_work_sweep()
