"""Job runs: every background job records what it did where the admin
shows it (status, times, counts, error) and logs one structured line.

A scheduled job's outcome also lands on its `ScheduleState` (matched by
job name and subject), from which the scheduler alone decides when it is
due next (posinv/scheduling.py): a success waits the interval, a failure
backs off, a held run waits for a person, and a run skipped because another
worker holds the lease is counted there instead of written as a row."""
from __future__ import annotations

import json
import logging
import time
import traceback
from contextlib import contextmanager
from contextvars import ContextVar

from django.db.models import F
from django.utils import timezone

from posinv.models import JobRun, ScheduleState
from posinv.services.leases import leased

logger = logging.getLogger("posinv.jobs")

# The run being recorded, so what the job does meanwhile (an outbound HTTP
# call's log line) can name it without every service passing it down.
_current_run_id: ContextVar[int | None] = ContextVar("posinv_job_run_id", default=None)


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
    run = JobRun.objects.create(name=name, subject=subject)
    _schedule(name, subject).update(last_started_at=run.started_at)
    counts = RunCounts()
    current = _current_run_id.set(run.pk)
    try:
        yield counts
    except Exception as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]
        _finish(run, name, subject, JobRun.Status.FAILED, counts, error)
        _log(name, subject, "failed", counts, started, error=str(exc)[:500])
        raise
    finally:
        _current_run_id.reset(current)
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
