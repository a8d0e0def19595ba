"""Job runs: every background job records what it did where the admin
shows it (status, times, counts, error) and logs one structured line.

A scheduled job's outcome also lands on its `ScheduleState` (matched by
job name and subject), from which the scheduler alone decides when it is
due next (posinv/scheduling.py): a success waits the interval, a failure
backs off, a held run waits for a person, and a run skipped because another
worker holds the lease is counted there instead of written as a row.

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

from django.db.models import F, Q
from django.utils import timezone

from posinv.heartbeat import dead_after_seconds, heartbeat_register
from posinv.models import JobRun, Lease, ScheduleState
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


class RunCounts(dict):
    """The counts a job run records (a plain dict to the job), and how the
    job says that its run did not succeed without raising: `fail(reason)`
    (the peer is unreachable, some records failed: retried with backoff),
    `hold(reason)` (the run needs a person's decision: not retried until a
    person confirms or releases it) or `skip(reason)` (nothing was done,
    e.g. another importer holds the store)."""

    outcome: str = ""
    reason: str = ""

    def fail(self, reason: str) -> None:
        self.outcome, self.reason = "failed", reason

    def hold(self, reason: str) -> None:
        self.outcome, self.reason = "held", reason

    def skip(self, reason: str = "") -> None:
        self.outcome, self.reason = "skipped", reason


@contextmanager
def job_run(name: str, subject: str = "", *, lease_seconds: float | None = None):
    """Record one run of job `name` for `subject`.

    Yields a RunCounts dict (or None when `lease_seconds` is given and
    another worker holds the lease on this job and subject: a scheduled
    job's skip is counted on its schedule, an unscheduled one is recorded
    as a skipped run). An exception marks the run failed and propagates."""
    started = time.monotonic()
    if lease_seconds is not None:
        with leased(f"job:{name}:{subject}", seconds=lease_seconds) as acquired:
            if not acquired:
                _skipped(name, subject, started, "another worker holds the lease")
                yield None
                return
            with _recorded(name, subject, started) as counts:
                yield counts
        return
    with _recorded(name, subject, started) as counts:
        yield counts


def _schedule(name: str, subject: str):
    return ScheduleState.objects.filter(job=name, subject=subject)


def _skipped(name: str, subject: str, started: float, reason: str) -> None:
    """A run that did nothing because someone else is at it. On a schedule it
    is counted (and defers the next offer by an interval) instead of adding
    a row every tick; the first skip in a row is logged."""
    now = timezone.now()
    schedule = _schedule(name, subject)
    first = schedule.filter(skipped_runs=0).exists()
    if schedule.update(skipped_runs=F("skipped_runs") + 1, last_skipped_at=now):
        if first:
            _log(name, subject, "skipped", {}, started, error=reason)
        return
    JobRun.objects.create(name=name, subject=subject, status=JobRun.Status.SKIPPED, finished_at=now, error=reason)
    _log(name, subject, "skipped", {}, started, error=reason)


@contextmanager
def _recorded(name: str, subject: str, started: float):
    run = JobRun.objects.create(name=name, subject=subject, process=lease_holder_name(),
                                heartbeat_at=timezone.now())
    _schedule(name, subject).update(last_started_at=run.started_at)
    counts = RunCounts()
    current = _current_run_id.set(run.pk)
    _live_runs.add(run.pk)
    heartbeat_register("job-runs", _job_runs_beat)
    try:
        yield counts
    except Exception as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]
        _finish(run, name, subject, JobRun.Status.FAILED, counts, error)
        _log(name, subject, "failed", counts, started, error=str(exc)[:500])
        raise
    finally:
        _current_run_id.reset(current)
        _live_runs.discard(run.pk)
    if counts.outcome == "skipped":
        JobRun.objects.filter(pk=run.pk).delete()
        _skipped(name, subject, started, counts.reason)
        return
    status = {"failed": JobRun.Status.FAILED, "held": JobRun.Status.HELD}.get(counts.outcome, JobRun.Status.SUCCEEDED)
    _finish(run, name, subject, status, counts, counts.reason[:4000])
    _log(name, subject, str(status), counts, started, error=counts.reason[:500])


def _finish(run: JobRun, name: str, subject: str, status: str, counts: dict, error: str) -> None:
    now = timezone.now()
    JobRun.objects.filter(pk=run.pk).update(status=status, finished_at=now, counts=dict(counts), error=error)
    schedule = _schedule(name, subject)
    done = {"last_finished_at": now, "skipped_runs": 0, "last_skipped_at": None}
    if status == JobRun.Status.SUCCEEDED:
        # A success (scheduled, or a person's "run now") ends a backoff and a hold.
        schedule.update(**done, last_outcome=ScheduleState.Outcome.SUCCEEDED, failures_in_row=0, last_error="",
                        held_since=None, held_reason="")
    elif status == JobRun.Status.FAILED:
        schedule.update(**done, last_outcome=ScheduleState.Outcome.FAILED,
                        failures_in_row=F("failures_in_row") + 1, last_error=error)
    else:
        schedule.update(**done, last_outcome=ScheduleState.Outcome.HELD, failures_in_row=0, last_error=error,
                        held_since=now, held_reason=error)


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


def schedule_release(*, state_ids, released_by: str = "") -> int:
    """A person released these schedules: a held run waits no more, a backoff
    is over, and each is due at the next tick. Returns how many were released."""
    state_ids = list(state_ids)
    released = ScheduleState.objects.filter(pk__in=state_ids).update(
        held_since=None, held_reason="", failures_in_row=0, last_outcome=ScheduleState.Outcome.NONE,
        last_started_at=None, last_skipped_at=None, not_before=None,
    )
    if released:
        logger.info(json.dumps({"event": "schedule_released", "schedules": state_ids[:50], "by": released_by}))
    return released


def schedule_held_for(*, job: str, subject: str) -> ScheduleState | None:
    """The schedule of `job` for `subject` when it is held for a person."""
    return ScheduleState.objects.filter(job=job, subject=subject, held_since__isnull=False).first()


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
        # A dead run is a failed run of its schedule too: it backs off like any failure.
        _schedule(run.name, run.subject).update(
            last_outcome=ScheduleState.Outcome.FAILED, failures_in_row=F("failures_in_row") + 1,
            last_finished_at=now, last_error=error)
        if run.process and run.heartbeat_at is not None:
            # A dead process holds nothing: its run's lease and any other (an
            # order import's own, a store download's) go, so the next run
            # does not wait for them to expire.
            Lease.objects.filter(holder=run.process).delete()
        _log(run.name, run.subject, "abandoned", {}, time.monotonic(), error=error)
        abandoned.append(run)
    return abandoned
