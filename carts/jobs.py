"""RQ entry points of the carts app: thin, idempotent, each calls one service."""
from __future__ import annotations

import json
import logging
import time

from carts.models import ExternalStore
from carts.services.orders import orders_import
from carts.services.qoh import qoh_send
from carts.services.stack import stack_sweep
from posinv.services.runs import job_run

logger = logging.getLogger("posinv.jobs")


def stack_sweep_job(*, store_id: int) -> dict:
    """One sweep of a store's web stack. Woken by every committed change, so
    it logs a line instead of writing a JobRun row per wake-up."""
    started = time.monotonic()
    result = stack_sweep(store_id=store_id)
    counts = result.as_counts()
    if counts:
        logger.info(json.dumps({"event": "job_run", "job": "stack_sweep", "subject": store_id, "outcome": "succeeded",
                                "counts": counts, "duration_ms": round((time.monotonic() - started) * 1000, 1)}))
    return counts


def orders_import_job(*, store_id: int) -> dict | None:
    """Import a store's orders (scheduled by interval; recorded as a JobRun)."""
    store = ExternalStore.objects.get(pk=store_id)
    with job_run("cart_orders_import", store.code) as counts:
        result = orders_import(store=store)
        counts.update(orders=result.orders, unknown_lines=result.lines_unknown, failures=result.failures,
                      skipped=result.skipped)
        return counts


def qoh_send_job(*, store_id: int) -> dict | None:
    """Send QOH for one store (admin action); one at a time per store (lease)."""
    store = ExternalStore.objects.get(pk=store_id)
    with job_run("cart_send_qoh", store.code, lease_seconds=900) as counts:
        if counts is None:
            return None
        result = qoh_send(store=store)
        counts.update(result.__dict__)
        return counts
