"""RQ entry points of the carts app: thin, idempotent, each calls one service."""
from __future__ import annotations

import json
import logging
import time

from carts.models import ExternalStore
from carts.services.orders import orders_import
from carts.services.qoh import qoh_send
from carts.services.stack import in_rq_worker, stack_sweep
from posinv.exceptions import InvalidInput
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
        # A worker other stores need never sleeps on one platform's bucket.
        result = orders_import(store=store, wait_for_limits=not in_rq_worker())
        counts.update(orders=result.orders, unknown_lines=result.lines_unknown, failures=result.failures,
                      skipped=result.skipped)
        if result.throttled_for is not None:
            counts["throttled"] = (f"the platform's limit cut the import short (it asked for "
                                   f"{result.throttled_for:.0f} s); the next run goes on from the cursor")
        if result.skipped:
            counts.skip("another import of this store is running")
        elif result.failures:
            # A failed run, so Sync health says so at once; the cursor stays
            # before the first of them, so they come again, with backoff.
            shown = "; ".join(result.failures[:5]) + (
                f" (and {len(result.failures) - 5} more)" if len(result.failures) > 5 else "")
            counts.fail(f"store {store.code}: {len(result.failures)} orders could not be applied, the import will "
                        f"start from the first of them again next run: {shown}")
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


def _lease_renewer(name: str, subject: str):
    """Renew the job's lease after each page, so a long download keeps it and
    a killed worker's lease runs out within POSINV_STORE_LEASE_SECONDS."""
    from django.conf import settings

    from posinv.services.leases import lease_acquire, lease_holder_name

    def renew() -> None:
        lease_acquire(key=f"job:{name}:{subject}", holder=lease_holder_name(),
                      seconds=settings.POSINV_STORE_LEASE_SECONDS)
    return renew


def _paused(counts: dict, run) -> None:
    counts.update(paused_until=run.paused_until.isoformat(), pages_read=run.pages_read, next_page=run.next_page,
                  note="the platform's rate limit: the run goes on from this page then")


def _held(counts, exc: InvalidInput) -> None:
    """A download that would zero or cut most figures is held: the schedule
    waits for a person (the held download's Apply or Discard in the admin)."""
    if not any(problem.code == "implausible" for problem in exc.problems):
        raise exc
    counts.hold("held for confirmation: " + "; ".join(p.reason for p in exc.problems))


def _store_run_job(job: str, store_id: int, run_store, figures) -> dict | None:
    """One stock or price run of a store (by its interval, or to go on with a
    paused download); one at a time per store. A wait for the platform's
    rate limit ends the job (the schedule runs the continuation) rather than
    holding a worker other stores need; a download that would zero or cut
    most figures is held for a person."""
    from django.conf import settings

    store = ExternalStore.objects.get(pk=store_id)
    with job_run(job, store.code, lease_seconds=settings.POSINV_STORE_LEASE_SECONDS) as counts:
        if counts is None:
            return None
        try:
            run = run_store(store=store, on_page=_lease_renewer(job, store.code))
        except InvalidInput as exc:
            _held(counts, exc)
            return counts
        if run.paused_until is not None:
            _paused(counts, run)
            return counts
        counts.update(**figures(run), bad_rows=[f"row {b.row}: {b.reason}" for b in run.bad_rows[:50]])
        return counts


def store_stock_job(*, store_id: int) -> dict | None:
    """One stock run of a superior or inferior store (`_store_run_job`)."""
    from carts.services.warehouses import store_stock_run

    return _store_run_job("store_stock", store_id, store_stock_run, lambda run: dict(
        read=run.read, counted=run.counted, unchanged=run.unchanged, unlinked=run.unlinked,
        pages_read=run.pages_read))


def store_prices_job(*, store_id: int) -> dict | None:
    """One price run of a store (`_store_run_job`)."""
    from carts.services.warehouses import store_price_run

    return _store_run_job("store_prices", store_id, store_price_run, lambda run: dict(
        read=run.read, changed=run.changed, unchanged=run.unchanged, sent=run.sent, errors=run.errors[:50]))
