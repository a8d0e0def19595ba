"""Job runs: every background job records what it did where the admin
shows it (status, times, counts, error) and logs one structured line."""
from __future__ import annotations

import json
import logging
import time
import traceback
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone

from posinv.models import JobRun
from posinv.services.leases import leased

logger = logging.getLogger("posinv.jobs")

# The run being recorded, so what the job does meanwhile (an outbound HTTP
# call's log line) can name it without every service passing it down.
_current_run_id: ContextVar[int | None] = ContextVar("posinv_job_run_id", default=None)


def job_run_current_id() -> int | None:
    """The id of the JobRun recorded around the calling code, or None outside a job run."""
    return _current_run_id.get()


@contextmanager
def job_run(name: str, subject: str = "", *, lease_seconds: float | None = None):
    """Record one run of job `name` for `subject`.

    Yields a dict for counts (or None when `lease_seconds` is given and
    another worker holds the lease on this job and subject: the run is then
    recorded as skipped). An exception marks the run failed and propagates."""
    started = time.monotonic()
    if lease_seconds is not None:
        with leased(f"job:{name}:{subject}", seconds=lease_seconds) as acquired:
            if not acquired:
                JobRun.objects.create(
                    name=name, subject=subject, status=JobRun.Status.SKIPPED, finished_at=timezone.now()
                )
                _log(name, subject, "skipped", {}, started)
                yield None
                return
            with _recorded(name, subject, started) as counts:
                yield counts
        return
    with _recorded(name, subject, started) as counts:
        yield counts


@contextmanager
def _recorded(name: str, subject: str, started: float):
    run = JobRun.objects.create(name=name, subject=subject)
    counts: dict = {}
    current = _current_run_id.set(run.pk)
    try:
        yield counts
    except Exception as exc:
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.FAILED,
            finished_at=timezone.now(),
            counts=counts,
            error="".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000],
        )
        _log(name, subject, "failed", counts, started, error=str(exc)[:500])
        raise
    finally:
        _current_run_id.reset(current)
    JobRun.objects.filter(pk=run.pk).update(
        status=JobRun.Status.SUCCEEDED, finished_at=timezone.now(), counts=counts
    )
    _log(name, subject, "succeeded", counts, started)


def _log(name: str, subject: str, outcome: str, counts: dict, started: float, error: str = "") -> None:
    record = {
        "event": "job_run",
        "job": name,
        "subject": subject,
        "outcome": outcome,
        "counts": counts,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if error:
        record["error"] = error
    logger.info(json.dumps(record, default=str))
