"""Job runs: every background job records what it did where the admin
shows it (status, times, counts, error) and logs one structured line.

While a run is in progress its process stamps `heartbeat_at` every
POSINV_HEARTBEAT_SECONDS (posinv/heartbeat.py). A run whose process was
killed stops being stamped; `job_runs_abandon_dead` marks it failed after
POSINV_DEAD_AFTER_SECONDS and frees its lease, so nothing stays "running"
forever and the next scheduled run is not blocked by a dead holder."""
from __future__ import annotations

import json
import logging
import time
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from posinv.heartbeat import dead_after_seconds, heartbeat_register
from posinv.models import JobRun, Lease
from posinv.services.leases import lease_holder_name, leased

logger = logging.getLogger("posinv.jobs")

# The run being recorded, so what the job does meanwhile (an outbound HTTP
# call's log line) can name it without every service passing it down.
_current_run_id: ContextVar[int | None] = ContextVar("posinv_job_run_id", default=None)
# Runs in progress in this process, stamped by the heartbeat thread.
_live_runs: set[int] = set()
ABANDONED_PREFIX = "Abandoned:"
LEGACY_RUN_DEAD_AFTER = timedelta(hours=1)


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
    run = JobRun.objects.create(name=name, subject=subject, process=lease_holder_name(),
                                heartbeat_at=timezone.now())
    counts: dict = {}
    current = _current_run_id.set(run.pk)
    _live_runs.add(run.pk)
    heartbeat_register("job-runs", _job_runs_beat)
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
        _live_runs.discard(run.pk)
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


def _job_runs_beat() -> None:
    live = list(_live_runs)
    if live:
        JobRun.objects.filter(pk__in=live, status=JobRun.Status.RUNNING).update(heartbeat_at=timezone.now())


def job_runs_dead(*, now: datetime):
    """Runs still marked running whose process has not stamped them for
    POSINV_DEAD_AFTER_SECONDS: killed (SIGKILL, OOM, power) or cut off."""
    cutoff = now - timedelta(seconds=dead_after_seconds())
    # A run without any heartbeat was started by code older than heartbeats
    # (before the upgrade's worker restart): judged by its start, an hour on.
    legacy_cutoff = min(cutoff, now - LEGACY_RUN_DEAD_AFTER)
    return JobRun.objects.filter(status=JobRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=legacy_cutoff)
    )


def job_runs_abandon_dead(*, now: datetime | None = None) -> list[JobRun]:
    """Mark every dead run failed, with the reason in words, and free the
    lease it held; returns the runs so marked. Safe to run anywhere, any
    number of times at once (each row is updated only while still running)."""
    now = now or timezone.now()
    abandoned = []
    for run in job_runs_dead(now=now).only("pk", "name", "subject", "process", "heartbeat_at", "started_at"):
        last = run.heartbeat_at or run.started_at
        error = (
            f"{ABANDONED_PREFIX} the process running it ({run.process or 'unknown'}) stopped answering; "
            f"last heartbeat {last:%Y-%m-%d %H:%M:%S} UTC. It was killed or lost the database. "
            "Nothing was half-applied (every job is one transaction per batch and idempotent); "
            "the next scheduled run does the work."
        )
        marked = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).update(
            status=JobRun.Status.FAILED, finished_at=now, error=error)
        if not marked:
            continue  # it finished meanwhile, or another sweeper got it
        if run.process and run.heartbeat_at is not None:
            Lease.objects.filter(key=f"job:{run.name}:{run.subject}", holder=run.process).delete()
        _log(run.name, run.subject, "abandoned", {}, time.monotonic(), error=error)
        abandoned.append(run)
    return abandoned
