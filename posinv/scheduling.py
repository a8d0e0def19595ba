"""The scheduler tick: ask every schedule provider (posinv/plugins.py)
what there is to run and enqueue what is due under a deterministic key, so a
run is never queued twice. Frequencies live on the objects in the database.

ONE rule decides when a periodic job is due next (`schedule_due_at`), from
where its last run ended (`ScheduleState`, written by
`posinv.services.runs.job_run`):

- never run: now;
- succeeded: its start + the interval;
- failed n times in a row: its end + the interval x 2^(n-1), at most
  max(interval, POSINV_SCHEDULE_BACKOFF_MAX_SECONDS) — so the first retry
  waits one interval, the next two, then four ...;
- held (it waits for a person, e.g. a download that would zero most
  products): never, until a person confirms or releases it;
- and in any case not before the peer's Retry-After (`not_before`) nor
  within an interval of a run skipped because another worker held the lease.

A provider yields a `Due` with `interval_seconds` for a periodic job; a Due
without one is a condition ("rows are waiting") and is offered whenever the
provider yields it: those jobs keep their own per-row backoff."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from posinv.plugins import extension_paths
from posinv.queueing import enqueue

logger = logging.getLogger(__name__)

# A schedule that never ran is due at once: "due since" this.
NEVER_RUN = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Due:
    """A job the scheduler may run: `key` names the run (e.g. "register-pull:R1").

    Periodic jobs give `interval_seconds` and `run` (the JobRun name and
    subject the job records, which tie its outcome to this schedule); the
    scheduler then applies the one due-time rule. `last_run_at` is when the
    object's own record says it last ran successfully (a store's
    last_stock_run_at): it seeds a schedule seen for the first time, and a
    success recorded there after the schedule's last outcome (a person ran
    it by command) counts as a success. `not_before` is a time the peer
    asked us not to call before. `backoff_max_seconds` bounds this job's
    backoff below the global cap (a register node's documented 300 s)."""

    key: str
    func: str
    kwargs: dict = field(default_factory=dict)
    queue: str = "default"
    ttl: int = 900
    interval_seconds: float | None = None
    run: tuple[str, str] | None = None
    last_run_at: datetime | None = None
    not_before: datetime | None = None
    backoff_max_seconds: float | None = None


def backoff_cap_seconds(interval_seconds: float, backoff_max_seconds: float | None = None) -> float:
    """The longest a failing schedule waits between tries."""
    cap = settings.POSINV_SCHEDULE_BACKOFF_MAX_SECONDS if backoff_max_seconds is None else backoff_max_seconds
    return max(float(interval_seconds), float(cap))


def backoff_seconds(interval_seconds: float, failures_in_row: int, backoff_max_seconds: float | None = None) -> float:
    """How long a schedule waits after its `failures_in_row`-th failure in a row."""
    if failures_in_row <= 0:
        return float(interval_seconds)
    # 2 ** 40 is far beyond any cap; bounding the exponent keeps the float finite.
    return min(float(interval_seconds) * 2 ** min(failures_in_row - 1, 40),
               backoff_cap_seconds(interval_seconds, backoff_max_seconds))


def schedule_due_at(
    state, interval_seconds: float, *, not_before: datetime | None = None, backoff_max_seconds: float | None = None
) -> datetime | None:
    """When the schedule in `state` (a ScheduleState) is due next; None while
    it is held for a person. See the module docstring for the rule."""
    from posinv.models import ScheduleState

    if state.held_since is not None:
        return None
    candidates: list[datetime] = []
    if state.last_outcome == ScheduleState.Outcome.FAILED and state.failures_in_row > 0:
        since = state.last_finished_at or state.last_started_at
        wait = backoff_seconds(interval_seconds, state.failures_in_row, backoff_max_seconds)
        candidates.append(since + timedelta(seconds=wait))
    elif state.last_started_at is not None:
        candidates.append(state.last_started_at + timedelta(seconds=interval_seconds))
    if state.last_skipped_at is not None:
        candidates.append(state.last_skipped_at + timedelta(seconds=interval_seconds))
    for later in (state.not_before, not_before):
        if later is not None:
            candidates.append(later)
    return max(candidates) if candidates else NEVER_RUN


def is_due(last_run: datetime | None, interval_seconds: float, now: datetime) -> bool:
    """For conditions that are not job schedules (e.g. a state row's age)."""
    return last_run is None or last_run + timedelta(seconds=interval_seconds) <= now


def schedule_states(dues: list[Due]) -> dict:
    """The ScheduleState of every periodic due, keyed by its key: created for
    new schedules (seeded with `last_run_at`), interval kept current. One
    read, plus writes only for new schedules and changed intervals."""
    from posinv.models import ScheduleState

    periodic = {due.key: due for due in dues if due.interval_seconds is not None and due.run is not None}
    if not periodic:
        return {}
    states = {s.key: s for s in ScheduleState.objects.filter(key__in=list(periodic))}
    missing = [
        ScheduleState(
            key=due.key, job=due.run[0], subject=due.run[1], interval_seconds=due.interval_seconds,
            last_started_at=due.last_run_at, last_finished_at=due.last_run_at,
            last_outcome=ScheduleState.Outcome.SUCCEEDED if due.last_run_at else ScheduleState.Outcome.NONE,
        )
        for key, due in periodic.items() if key not in states
    ]
    if missing:
        ScheduleState.objects.bulk_create(missing, ignore_conflicts=True)
        states.update({s.key: s for s in ScheduleState.objects.filter(key__in=[m.key for m in missing])})
    for key, state in states.items():
        due = periodic[key]
        if state.interval_seconds != due.interval_seconds or (state.job, state.subject) != due.run:
            ScheduleState.objects.filter(pk=state.pk).update(
                interval_seconds=due.interval_seconds, job=due.run[0], subject=due.run[1]
            )
            state.interval_seconds = due.interval_seconds
        _success_outside(state, due.last_run_at)
    return states


def _success_outside(state, succeeded_at: datetime | None) -> None:
    """The object records a success newer than anything the schedule knows:
    someone ran it outside the scheduler (a command, an admin action). That
    ends a backoff or a hold, here and on the dashboard."""
    from posinv.models import ScheduleState

    known = max((t for t in (state.last_started_at, state.last_finished_at) if t is not None), default=None)
    if succeeded_at is None or (known is not None and succeeded_at <= known):
        return
    if state.last_outcome == ScheduleState.Outcome.SUCCEEDED and state.held_since is None:
        return  # the schedule's own run is under way (it set the time) or nothing to heal
    changes = {
        "last_outcome": ScheduleState.Outcome.SUCCEEDED, "failures_in_row": 0, "held_since": None,
        "held_reason": "", "last_error": "", "last_started_at": succeeded_at, "last_finished_at": succeeded_at,
    }
    ScheduleState.objects.filter(pk=state.pk).update(**changes)
    for name, value in changes.items():
        setattr(state, name, value)


def dues_now(dues: Iterable[Due], *, now: datetime) -> list[Due]:
    """Of `dues`, those due at `now` by the one rule (conditions always are)."""
    dues = list(dues)
    states = schedule_states(dues)
    result = []
    for due in dues:
        state = states.get(due.key)
        if state is None:
            if due.interval_seconds is None or due.run is None:
                result.append(due)
            continue
        at = schedule_due_at(state, due.interval_seconds, not_before=due.not_before,
                             backoff_max_seconds=due.backoff_max_seconds)
        if at is not None and at <= now:
            result.append(due)
    return result


def _schedules_forget(candidates: list[Due]) -> None:
    """Drop the states of schedules no provider offers any more (a store
    deactivated, a cabinet that pushes now), so a failure or hold of theirs
    does not stay on Sync health forever. Only after every provider answered:
    one that failed this tick must not lose its schedules' backoff."""
    from posinv.models import ScheduleState

    periodic = [due.key for due in candidates if due.interval_seconds is not None and due.run is not None]
    ScheduleState.objects.exclude(key__in=periodic).delete()


def scheduler_tick(*, now: datetime | None = None) -> list[str]:
    """Enqueue everything due; returns the keys offered (deduplicated by the queue)."""
    now = now or timezone.now()
    offered = []
    candidates: list[Due] = []
    every_provider_answered = True
    for path in extension_paths("schedule_providers"):
        try:
            candidates.extend(list(import_string(path)(now=now)))
        except Exception:
            logger.exception("schedule provider %s failed", path)
            every_provider_answered = False
            continue
    if every_provider_answered:
        _schedules_forget(candidates)
    for due in dues_now(candidates, now=now):
        try:
            enqueue(due.func, queue=due.queue, unique_key=due.key, clear="end", ttl=due.ttl, **due.kwargs)
        except Exception:
            # Inline (no Redis) the job runs here: its failure is recorded
            # by the job itself and must not keep the other due jobs from
            # running. With Redis this is an enqueue error (Redis down).
            logger.exception("due job %s failed", due.key)
            continue
        offered.append(due.key)
    return offered
