"""Reads behind the sync-health dashboard and /metrics.

Every figure comes from the other apps' tables (and from django-rq for the
queues), computed in a fixed handful of queries however many registers,
cabinets and stores there are: one annotated query per kind of object, one
for the trays, one for the ledger check, one per chart series. Each row
carries a status (red / amber / green), the reason for it and links to the
admin list behind every figure."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Window,
)
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from cabinets.models import Tray, WeighingCabinet
from carts.models import ExternalStore, StackEntry, StoreDownload
from pos.models import CashRegister, Receipt, SyncEntry
from posinv.models import ChangeFailure, JobRun, ScheduleState, StockMove
from posinv.scheduling import backoff_seconds, schedule_due_at
from posinv.services.verification import LEDGER_VERIFY_JOB

GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"
_RANK = {GREY: 0, GREEN: 1, AMBER: 2, RED: 3}

# Marks a web-stack entry that waits because the platform (or our shared
# budget) asked us to slow down: carts' connectors write these into
# last_response when they raise Throttled. One case-insensitive pattern, so
# the count and the admin list behind it (`last_response__iregex=`) select
# exactly the same rows.
THROTTLE_PATTERN = r"429|throttled|rate budget spent|exceeded [0-9]+ calls"


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def worst(statuses) -> str:
    """The most urgent of `statuses` (grey when empty)."""
    return max(statuses, key=lambda s: _RANK[s], default=GREY)


def _admin_list(model_label: str, **params) -> str:
    app, model = model_label.split(".")
    url = reverse(f"admin:{app}_{model}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


@dataclass
class RegisterHealth:
    """One cash register as the main system sees it."""

    id: int
    code: str
    name: str
    sync_type: str
    active: bool
    last_success_at: datetime | None
    pending: int
    failed: int
    oldest_pending_at: datetime | None
    oldest_pending_age: float | None
    last_error: str
    status: str = GREEN
    reason: str = ""
    links: dict = field(default_factory=dict)


@dataclass
class CabinetHealth:
    """One weighing cabinet: its last reading and trays needing a look."""

    id: int
    code: str
    name: str
    active: bool
    last_reading_at: datetime | None
    last_reading_age: float | None
    trays: int
    stale_trays: int
    unstable_trays: int
    last_pull_error: str
    status: str = GREEN
    reason: str = ""
    links: dict = field(default_factory=dict)


@dataclass
class StoreHealth:
    """One cart, store or wholesaler: its web stack and order import."""

    id: int
    code: str
    name: str
    kind: str
    platform: str
    sync_inventory: bool
    import_orders: bool
    depth: int
    oldest_waiting_at: datetime | None
    oldest_waiting_age: float | None
    failed: int
    throttled: int
    last_order_import_at: datetime | None
    last_import_status: str | None
    status: str = GREEN
    reason: str = ""
    links: dict = field(default_factory=dict)


@dataclass
class LedgerHealth:
    """The last recorded ledger verification."""

    run: JobRun | None
    drifting: int | None
    status: str
    reason: str
    links: dict = field(default_factory=dict)


@dataclass
class QueueHealth:
    """RQ queues and workers (or the in-process mode without Redis)."""

    mode: str  # "rq", "inline" or "down"
    queues: list[dict]
    workers: int
    failed_jobs: int
    error: str
    status: str
    reason: str
    links: dict = field(default_factory=dict)
    worker_list: list[dict] = field(default_factory=list)
    dead_workers: int = 0  # in RQ's registry, silent for POSINV_DEAD_AFTER_SECONDS; not in `workers`
    dead_runs: int = 0  # job runs marked running whose process stopped sending heartbeats


@dataclass
class ScheduleHealth:
    """A periodic job that is not running on time: failing (backing off),
    held for a person, or skipped because a lease is held elsewhere."""

    key: str
    job: str
    subject: str
    failures_in_row: int
    next_due_at: datetime | None
    status: str
    reason: str
    links: dict = field(default_factory=dict)


@dataclass
class ChangeDeliveryHealth:
    """(article, location) pairs a change consumer skipped (posinv ChangeFailure)."""

    undelivered: int
    examples: list[str]
    status: str
    reason: str
    links: dict = field(default_factory=dict)


@dataclass
class SyncHealth:
    """Everything the dashboard shows; `status` is the worst of all rows."""

    now: datetime
    registers: list[RegisterHealth]
    cabinets: list[CabinetHealth]
    stores: list[StoreHealth]
    ledger: LedgerHealth
    queues: QueueHealth
    moves_per_minute: float
    lag_seconds: dict
    sections: dict = field(default_factory=dict)
    status: str = GREEN
    schedules: list[ScheduleHealth] = field(default_factory=list)
    changes: ChangeDeliveryHealth | None = None


# -- registers --------------------------------------------------------------

def register_health_list(*, now: datetime) -> list[RegisterHealth]:
    """Per register: last successful transfer, pending (incl. waiting for a
    gap) and failed received entries, and the oldest pending one. One query."""
    open_states = [SyncEntry.State.PENDING, SyncEntry.State.WAITING]
    # On a register node its own outbox is what matters: pending entries and
    # those the main system refused whole.
    node = settings.POSINV_NODE == "register"
    direction = SyncEntry.Direction.OUT if node else SyncEntry.Direction.IN
    received = Q(entries__direction=direction)
    rows = (
        CashRegister.objects.order_by("code")
        .annotate(
            n_pending=Count("entries", filter=received & Q(entries__state__in=open_states)),
            n_failed=Count("entries", filter=received & Q(entries__state=SyncEntry.State.FAILED)),
            oldest_pending=Min("entries__created_at", filter=received & Q(entries__state__in=open_states)),
        )
        .values("id", "code", "name", "sync_type", "active", "last_success_at", "last_error", "last_error_at",
                "n_pending", "n_failed", "oldest_pending")
    )
    red_after = _setting("POSINV_HEALTH_PENDING_RED_SECONDS", 900)
    result = []
    for row in rows:
        health = RegisterHealth(
            id=row["id"], code=row["code"], name=row["name"], sync_type=row["sync_type"], active=row["active"],
            last_success_at=row["last_success_at"], pending=row["n_pending"], failed=row["n_failed"],
            oldest_pending_at=row["oldest_pending"], oldest_pending_age=_age(now, row["oldest_pending"]),
            last_error=row["last_error"],
        )
        error_is_newer = bool(row["last_error"]) and (
            row["last_success_at"] is None
            or (row["last_error_at"] is not None and row["last_error_at"] > row["last_success_at"])
        )
        if not health.active:
            health.status, health.reason = GREY, "inactive"
        elif health.failed:
            health.status, health.reason = RED, _register_failed_reason(health, node=node)
        elif error_is_newer:
            health.status, health.reason = RED, f"last transfer failed: {row['last_error'][:120]}"
        elif health.oldest_pending_age is not None and health.oldest_pending_age > red_after:
            health.status, health.reason = RED, f"entries pending for over {int(red_after)} s"
        elif health.pending:
            health.status, health.reason = AMBER, f"{health.pending} entries pending"
        elif health.last_success_at is None:
            health.status, health.reason = AMBER, "no transfer yet"
        else:
            health.status, health.reason = GREEN, "in sync"
        base = {"register__id__exact": health.id, "direction__exact": direction}
        health.links = {
            "register": reverse("admin:pos_cashregister_change", args=[health.id]),
            "pending": _admin_list("pos.syncentry", **base, state__in="pending,waiting"),
            "failed": _admin_list("pos.syncentry", **base, state__exact=SyncEntry.State.FAILED),
            "entries": _admin_list("pos.syncentry", **base),
        }
        result.append(health)
    return result


def _register_failed_reason(health: RegisterHealth, *, node: bool) -> str:
    if node:
        return (f"{health.failed} entries refused by the main system, kept here: fix the cause (or update the "
                "main system), then Retry them (Synchronization entries, state failed)")
    detail = health.last_error if health.last_error.startswith(f"{health.failed} failed") else ""
    return (detail[:300] if detail else
            f"{health.failed} entries could not be applied: fix the cause and Retry, or Skip them with a reason")


def register_sync_check(*, now: datetime | None = None) -> dict:
    """The registers in one line for /healthz: the worst status, the reason
    of each register that is not green (in words a person can act on) and a
    link to the rows behind the worst one."""
    rows = [row for row in register_health_list(now=now or timezone.now()) if row.status != GREY]
    status = worst(row.status for row in rows) if rows else GREEN
    troubled = sorted((row for row in rows if row.status != GREEN), key=lambda row: -_RANK[row.status])
    if not troubled:
        return {"status": status, "reason": "in sync" if rows else "no active register", "link": ""}
    first = troubled[0]
    link = first.links["failed"] if first.failed else first.links["register"]
    reason = "; ".join(f"register {row.code}: {row.reason[:200]}" for row in troubled[:5])
    if len(troubled) > 5:
        reason += f"; and {len(troubled) - 5} more registers"
    return {"status": status, "reason": reason, "link": link}


# -- cabinets ---------------------------------------------------------------

def cabinet_health_list(*, now: datetime) -> list[CabinetHealth]:
    """Per cabinet: last reading, and trays that are stale (filled but not
    read for two intervals) or unstable (an ambiguous reading held for a
    repeat). Two queries: the cabinets, then their trays' few columns."""
    cabinets = list(
        WeighingCabinet.objects.order_by("code").values(
            "id", "code", "name", "active", "interval_seconds", "last_reading_at", "created_at", "pull_url",
            "last_pull_error",
        )
    )
    trays: dict[int, list[tuple]] = {}
    for cabinet_id, state, last_read_at, held in Tray.objects.order_by().values_list(
        "cabinet_id", "state", "last_read_at", "held_quantity"
    ):
        trays.setdefault(cabinet_id, []).append((state, last_read_at, held))
    result = []
    for row in cabinets:
        window = timedelta(seconds=2 * row["interval_seconds"])
        own = trays.get(row["id"], [])
        stale = sum(
            1 for state, read_at, _ in own
            if state == Tray.State.FILLED and (read_at is None or now - read_at > window)
        )
        unstable = sum(1 for _, _, held in own if held is not None)
        health = CabinetHealth(
            id=row["id"], code=row["code"], name=row["name"], active=row["active"],
            last_reading_at=row["last_reading_at"], last_reading_age=_age(now, row["last_reading_at"]),
            trays=len(own), stale_trays=stale, unstable_trays=unstable, last_pull_error=row["last_pull_error"],
        )
        since = row["last_reading_at"] or row["created_at"]
        silent = since is not None and now - since > window
        if not health.active:
            health.status, health.reason = GREY, "inactive"
        elif silent:
            health.status, health.reason = RED, f"silent for over two intervals ({2 * row['interval_seconds']} s)"
        elif row["pull_url"] and row["last_pull_error"]:
            health.status, health.reason = RED, f"last pull failed: {row['last_pull_error'][:120]}"
        elif row["last_reading_at"] is None:
            health.status, health.reason = AMBER, "no reading yet"
        elif stale or unstable:
            health.status = AMBER
            health.reason = ", ".join(
                part for part in (f"{stale} stale trays" if stale else "",
                                  f"{unstable} unstable trays" if unstable else "") if part
            )
        else:
            health.status, health.reason = GREEN, "reading"
        cabinet_filter = {"cabinet__id__exact": health.id}
        health.links = {
            "cabinet": reverse("admin:cabinets_weighingcabinet_change", args=[health.id]),
            "readings": _admin_list("cabinets.weightreading", **cabinet_filter),
            "trays": _admin_list("cabinets.tray", **cabinet_filter),
            "stale": _admin_list("cabinets.tray", **cabinet_filter, state__exact=Tray.State.FILLED,
                                 last_read_at__lt=(now - window).isoformat(timespec="seconds")),
            "unstable": _admin_list("cabinets.tray", **cabinet_filter, held_quantity__isnull="False"),
        }
        result.append(health)
    return result


# -- carts and stores -------------------------------------------------------

def store_health_list(*, now: datetime) -> list[StoreHealth]:
    """Per cart / store / wholesaler: web stack depth (waiting or being
    sent), the oldest waiting record, failures, entries held back by
    throttling, and the last order import with its outcome. One query."""
    open_states = [StackEntry.State.WAITING, StackEntry.State.SENDING]
    throttled = Q(stack__last_response__iregex=THROTTLE_PATTERN)
    last_import = (
        JobRun.objects.filter(name="cart_orders_import", subject=OuterRef("code"))
        .exclude(status=JobRun.Status.SKIPPED).order_by("-started_at", "-pk").values("status")[:1]
    )
    # A download held as a likely broken feed: nothing of it arrives until a person decides.
    held_download = StoreDownload.objects.filter(store=OuterRef("pk"), state=StoreDownload.State.HELD).order_by("pk")
    rows = (
        ExternalStore.objects.order_by("code")
        .annotate(
            n_open=Count("stack", filter=Q(stack__state__in=open_states)),
            oldest=Min("stack__created_at", filter=Q(stack__state__in=open_states)),
            n_failed=Count("stack", filter=Q(stack__state=StackEntry.State.FAILED)),
            n_throttled=Count("stack", filter=Q(stack__state=StackEntry.State.WAITING) & throttled),
            import_status=Subquery(last_import),
            held=Subquery(held_download.values("hold_reason")[:1]),
            held_kind=Subquery(held_download.values("kind")[:1]),
        )
        .values("id", "code", "name", "kind", "platform", "active", "sync_inventory", "import_orders",
                "order_interval_seconds", "last_order_import_at", "n_open", "oldest", "n_failed", "n_throttled",
                "import_status", "held", "held_kind")
    )
    amber_after = _setting("POSINV_HEALTH_STACK_AMBER_SECONDS", 20)
    red_after = _setting("POSINV_HEALTH_STACK_RED_SECONDS", 300)
    result = []
    for row in rows:
        health = StoreHealth(
            id=row["id"], code=row["code"], name=row["name"], kind=row["kind"], platform=row["platform"],
            sync_inventory=row["sync_inventory"], import_orders=row["import_orders"], depth=row["n_open"],
            oldest_waiting_at=row["oldest"], oldest_waiting_age=_age(now, row["oldest"]), failed=row["n_failed"],
            throttled=row["n_throttled"], last_order_import_at=row["last_order_import_at"],
            last_import_status=row["import_status"],
        )
        age = health.oldest_waiting_age or 0
        import_late = row["import_orders"] and (
            row["last_order_import_at"] is None
            or now - row["last_order_import_at"] > timedelta(seconds=3 * row["order_interval_seconds"])
        )
        if not row["active"]:
            health.status, health.reason = GREY, "inactive"
        elif health.failed:
            health.status, health.reason = RED, f"{health.failed} failed web stack entries"
        elif age > red_after:
            health.status, health.reason = RED, f"a record has waited over {int(red_after)} s"
        elif row["import_orders"] and row["import_status"] == JobRun.Status.FAILED:
            health.status, health.reason = RED, "the last order import failed"
        elif row["held"]:
            health.status, health.reason = AMBER, (f"a {row['held_kind']} download is held for confirmation: "
                                                   f"{row['held']} (apply or discard it in Store downloads)")
        elif health.throttled:
            health.status, health.reason = AMBER, f"{health.throttled} entries held back by throttling"
        elif age > amber_after:
            health.status, health.reason = AMBER, f"a record has waited over {int(amber_after)} s"
        elif import_late:
            health.status, health.reason = AMBER, "no recent order import"
        else:
            health.status, health.reason = GREEN, "in sync"
        store_filter = {"store__id__exact": health.id}
        health.links = {
            "store": reverse("admin:carts_externalstore_change", args=[health.id]),
            "stack": _admin_list("carts.stackentry", **store_filter, state__in="waiting,sending"),
            "failed": _admin_list("carts.stackentry", **store_filter, state__exact=StackEntry.State.FAILED),
            "throttled": _admin_list("carts.stackentry", **store_filter, state__exact=StackEntry.State.WAITING,
                                     last_response__iregex=THROTTLE_PATTERN),
            "orders": _admin_list("carts.importedorder", **store_filter),
            "imports": _admin_list("posinv.jobrun", name__exact="cart_orders_import", subject=health.code),
            "downloads": _admin_list("carts.storedownload", **store_filter, state__exact=StoreDownload.State.HELD),
        }
        result.append(health)
    return result


# -- scheduled jobs ---------------------------------------------------------

# Runs skipped in a row (another worker holds the lease) before it is worth a look.
SKIPS_AMBER = 3


def schedule_health_list(*, now: datetime) -> list[ScheduleHealth]:
    """The periodic jobs that are not running on time, from their schedule
    states (one query): amber after one failure, red after
    POSINV_HEALTH_SCHEDULE_RED_FAILURES in a row (3: the retry then waits
    four intervals) or once the backoff reached its cap; amber while a run is
    held for a person or keeps being skipped because another worker holds
    its lease. A schedule that succeeds again leaves the list."""
    red_failures = int(_setting("POSINV_HEALTH_SCHEDULE_RED_FAILURES", 3))
    problems = ScheduleState.objects.filter(
        Q(failures_in_row__gt=0) | Q(held_since__isnull=False) | Q(skipped_runs__gte=SKIPS_AMBER)
    ).order_by("key")
    result = []
    for state in problems:
        due = schedule_due_at(state, state.interval_seconds)
        health = ScheduleHealth(key=state.key, job=state.job, subject=state.subject,
                                failures_in_row=state.failures_in_row, next_due_at=due, status=AMBER, reason="")
        if state.held_since is not None:
            health.reason = (f"{state.key} is held since {state.held_since:%Y-%m-%d %H:%M} and waits for a person: "
                             f"{state.held_reason[:160]}")
        elif state.failures_in_row:
            wait = backoff_seconds(state.interval_seconds, state.failures_in_row)
            capped = state.failures_in_row > 1 and wait >= backoff_seconds(state.interval_seconds, 10**6)
            if state.failures_in_row >= red_failures or capped:
                health.status = RED
            retry = "next try now" if due is None or due <= now else f"next try in {_span((due - now).total_seconds())}"
            times = f"{state.failures_in_row} time{'s' if state.failures_in_row > 1 else ''}"
            health.reason = f"{state.key} failed {times} in a row ({retry}): {state.last_error[:160]}"
        else:
            health.reason = (f"{state.key} was skipped {state.skipped_runs} times: another worker holds its lease "
                             "(a stuck or killed worker? see Admin → Leases)")
        health.links = {
            "schedule": _admin_list("posinv.schedulestate", key=state.key),
            "runs": _admin_list("posinv.jobrun", name__exact=state.job, subject=state.subject),
        }
        result.append(health)
    return result


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


# -- cabinet readings rejected, pull cursor -------------------------------------

def _cabinet_reading_problem(row: dict, now: datetime) -> tuple[str, str] | None:
    """(status, reason) when a cabinet's pull cursor is ahead of our clock
    (red: no true reading is fetched until staff reset it) or its readings
    were rejected within two intervals (amber, with the reason)."""
    from cabinets.services.readings import FUTURE_SKEW

    if row["pull_url"] and row["pull_cursor"] is not None and row["pull_cursor"] > now + FUTURE_SKEW:
        return RED, (f"the pull cursor ({row['pull_cursor']:%Y-%m-%d %H:%M}) is ahead of our clock, so no true "
                     "reading is fetched: use 'Reset the pull cursor' on the cabinet")
    if row["last_rejected_at"] is not None and (
            now - row["last_rejected_at"] <= timedelta(seconds=2 * row["interval_seconds"])):
        return AMBER, f"readings rejected: {row['last_rejected_reason'][:120]}"
    return None


_CABINET_READING_FIELDS = ("id", "code", "active", "interval_seconds", "pull_url", "pull_cursor", "last_rejected_at",
                           "last_rejected_reason")


def cabinet_rejections_apply(cabinets: list[CabinetHealth], *, now: datetime) -> None:
    """Raise the dashboard's cabinet rows whose readings are being rejected
    or whose pull cursor is stuck ahead of our clock (see
    `_cabinet_reading_problem`); a red row keeps its reason and gets the
    rejection added. One query."""
    rows = {row["id"]: row for row in WeighingCabinet.objects.filter(pk__in=[c.id for c in cabinets])
            .values(*_CABINET_READING_FIELDS)}
    for health in cabinets:
        row = rows.get(health.id)
        if row is None or not health.active:
            continue
        health.links["rejected"] = _admin_list("cabinets.weightreading", cabinet__id__exact=health.id,
                                               outcome__exact="rejected")
        problem = _cabinet_reading_problem(row, now)
        if problem is None:
            continue
        status, reason = problem
        if status == RED or health.status != RED:
            health.status, health.reason = status, reason
        else:
            health.reason += f"; {reason}"


# -- /healthz: sync problems in a few queries --------------------------------

def schedule_problems(*, now: datetime) -> list[dict]:
    return [{"check": "schedule", "subject": h.key, "status": h.status, "reason": h.reason,
             "link": h.links["schedule"]} for h in schedule_health_list(now=now)]


def cabinet_reading_problems(*, now: datetime) -> list[dict]:
    problems = []
    for row in WeighingCabinet.objects.filter(active=True).filter(
            Q(last_rejected_at__isnull=False) | Q(pull_cursor__isnull=False)).values(*_CABINET_READING_FIELDS):
        problem = _cabinet_reading_problem(row, now)
        if problem is not None:
            problems.append({
                "check": "cabinet_readings", "subject": row["code"], "status": problem[0], "reason": problem[1],
                "link": _admin_list("cabinets.weightreading", cabinet__id__exact=row["id"], outcome__exact="rejected"),
            })
    return problems


# The checks /healthz reports under "sync": each returns problem dicts
# {check, subject, status (amber/red), reason, link}. Add yours here.
HEALTHZ_SYNC_CHECKS = [schedule_problems, cabinet_reading_problems]


def sync_problems(*, now: datetime | None = None) -> dict:
    """The sync checks of /healthz: the worst status (green when none) and
    every problem with its reason and a link to the admin rows behind it."""
    now = now or timezone.now()
    problems: list[dict] = []
    for check in HEALTHZ_SYNC_CHECKS:
        problems.extend(check(now=now))
    return {"status": worst(p["status"] for p in problems) if problems else GREEN, "problems": problems}


# -- ledger, queues ---------------------------------------------------------

def ledger_health_get(*, now: datetime) -> LedgerHealth:
    """The newest recorded `verify_ledger` run: red when it found drift (or
    crashed), amber when none ran within the expected period. One query."""
    run = (
        JobRun.objects.filter(name=LEDGER_VERIFY_JOB)
        .exclude(status__in=[JobRun.Status.RUNNING, JobRun.Status.SKIPPED])
        .order_by("-started_at", "-pk").first()
    )
    links = {"runs": _admin_list("posinv.jobrun", name__exact=LEDGER_VERIFY_JOB)}
    hours = _setting("POSINV_VERIFY_LEDGER_HOURS", 24)
    if run is None:
        return LedgerHealth(run=None, drifting=None, status=AMBER, reason="never verified", links=links)
    drifting = (run.counts or {}).get("drifting")
    if run.status == JobRun.Status.FAILED:
        reason = f"{drifting} drifting pairs" if drifting else f"verification failed: {run.error[:120]}"
        return LedgerHealth(run=run, drifting=drifting, status=RED, reason=reason, links=links)
    if now - run.started_at > timedelta(hours=hours + 2):
        return LedgerHealth(run=run, drifting=drifting, status=AMBER,
                            reason=f"not verified for over {int(hours)} h", links=links)
    return LedgerHealth(run=run, drifting=drifting, status=GREEN, reason="every level equals its moves",
                        links=links)


def change_delivery_health_get() -> ChangeDeliveryHealth:
    """Red while any pair's changes are skipped by a consumer: that product is
    not kept in sync there until its cause is fixed. One query."""
    failures = list(
        ChangeFailure.objects.select_related("article", "location").annotate(total=Window(Count("id")))
        .order_by("-last_failed_at", "pk")[:3]
    )
    count = failures[0].total if failures else 0
    links = {"failures": _admin_list("posinv.changefailure")}
    if not count:
        return ChangeDeliveryHealth(undelivered=0, examples=[], status=GREEN,
                                    reason="every change reached every consumer", links=links)
    examples = [f"{f.article.sku} at {f.location.code}: {f.reason}" for f in failures]
    reason = f"{count} product/location pairs not delivered, e.g. {examples[0]}"
    return ChangeDeliveryHealth(undelivered=count, examples=examples, status=RED, reason=reason, links=links)


def dead_runs_get(*, now: datetime) -> tuple[int, str]:
    """Job runs still marked running whose process stopped sending
    heartbeats (killed, or cut off from the database), and the admin list of
    running runs behind the figure. One indexed query."""
    from posinv.services.runs import job_runs_dead

    return job_runs_dead(now=now).count(), _admin_list("posinv.jobrun", status__exact=JobRun.Status.RUNNING)


def _dead_runs_reason(count: int) -> str:
    return (f"{count} job run{'s' if count != 1 else ''} marked running without a heartbeat for over "
            f"{_setting('POSINV_DEAD_AFTER_SECONDS', 30):g} s: the process running "
            f"{'them' if count != 1 else 'it'} died; the next sweep (any live worker) marks "
            f"{'them' if count != 1 else 'it'} failed")


def queue_health_get(*, now: datetime | None = None) -> QueueHealth:
    """Depths of the RQ queues, their failed jobs, and the workers: only
    live ones (a posinv heartbeat within POSINV_DEAD_AFTER_SECONDS) count;
    a dead one (killed, hung) and a live one that cannot reach the database
    are named in the reason. Job runs left running by a dead process turn it
    amber too. Without Redis the jobs run in-process."""
    now = now or timezone.now()
    links = {"queues": reverse("django_rq:home")}
    dead_runs, links["runs"] = dead_runs_get(now=now)
    if not settings.REDIS_URL or settings.POSINV_JOBS_INLINE:
        if dead_runs:
            return QueueHealth(mode="inline", queues=[], workers=0, failed_jobs=0, error="", status=AMBER,
                               reason=_dead_runs_reason(dead_runs), links=links, dead_runs=dead_runs)
        return QueueHealth(mode="inline", queues=[], workers=0, failed_jobs=0, error="", status=GREEN,
                           reason="jobs run in-process (no Redis configured)", links=links)
    import django_rq
    from rq import Worker

    from posinv.worker import worker_liveness

    try:
        queues = []
        configured = list(settings.RQ_QUEUES)
        for name in settings.RQ_QUEUE_NAMES:
            queue = django_rq.get_queue(name)
            index = configured.index(name)
            queues.append({
                "name": name,
                "jobs_url": reverse("django_rq:jobs", args=[index]),
                "failed_url": reverse("django_rq:failed_jobs", args=[index]),
                "depth": queue.count,
                "started": queue.started_job_registry.count,
                "failed": queue.failed_job_registry.count,
            })
        connection = django_rq.get_connection("default")
        found = Worker.all(connection=connection)
        liveness = worker_liveness(found, connection=connection, now=now)
        detail = [
            {
                "name": worker.name,
                "host": worker.hostname or "",
                "pid": worker.pid,
                "state": worker.get_state() if liveness[worker.name].alive else "dead",
                "alive": liveness[worker.name].alive,
                "heard_seconds_ago": liveness[worker.name].heard_seconds_ago,
                "database": liveness[worker.name].database,
                "queues": ", ".join(worker.queue_names()),
                "current_job": worker.get_current_job_id() or "",
                "succeeded": worker.successful_job_count,
                "failed": worker.failed_job_count,
                "last_heartbeat": worker.last_heartbeat,
            }
            for worker in sorted(found, key=lambda w: (w.hostname or "", w.name))
        ]
        live = [w for w in detail if w["alive"]]
        workers = len(live)
    except Exception as exc:  # Redis down: the dashboard must still render and say so
        return QueueHealth(mode="down", queues=[], workers=0, failed_jobs=0, error=str(exc)[:200], status=RED,
                           reason=f"Redis unreachable: {str(exc)[:120]}", links=links, dead_runs=dead_runs)
    depth = sum(q["depth"] for q in queues)
    failed = sum(q["failed"] for q in queues)
    dead = [w for w in detail if not w["alive"]]
    cut_off = [w for w in live if w["database"] not in ("", "ok")]
    silent = ""
    if dead:
        w = dead[0]
        silent = (f"worker {w['name']} on {w['host']} (pid {w['pid']}) stopped answering "
                  f"{w['heard_seconds_ago'] or 0:.0f} s ago (killed or hung)")
    if workers == 0 and depth:
        status, reason = RED, f"{depth} jobs queued and no worker running"
        if silent:
            reason += f"; {silent}: start a worker"
    elif cut_off:
        w = cut_off[0]
        status, reason = RED, (f"worker {w['name']} on {w['host']} (pid {w['pid']}) cannot reach the database "
                               f"({w['database'][:120]}): every job it takes fails; check the database and "
                               "the network from that host")
    elif workers == 0:
        status, reason = AMBER, "no worker running" + (f"; {silent}: start a worker" if silent else "")
    elif dead:
        status, reason = AMBER, f"{silent}; the next sweep removes it and frees its job"
    elif dead_runs:
        status, reason = AMBER, _dead_runs_reason(dead_runs)
    elif failed:
        status, reason = AMBER, f"{failed} failed jobs"
    else:
        hosts = len({w["host"] for w in live})
        status, reason = GREEN, f"{workers} workers on {hosts} host{'s' if hosts != 1 else ''}"
    return QueueHealth(mode="rq", queues=queues, workers=workers, failed_jobs=failed, error="", status=status,
                       reason=reason, links=links, worker_list=detail, dead_workers=len(dead),
                       dead_runs=dead_runs)


# -- throughput and lag -----------------------------------------------------

def _seconds(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    # SQLite hands durations back as microseconds.
    return float(value) / 1_000_000


_STACK_LAG = ExpressionWrapper(F("sent_at") - F("created_at"), output_field=DurationField())
_REGISTER_LAG = ExpressionWrapper(F("recorded_at") - F("created_at"), output_field=DurationField())


def moves_per_minute(*, now: datetime, minutes: int = 5) -> float:
    """Stock moves written per minute over the last `minutes`. One query."""
    count = StockMove.objects.filter(created_at__gte=now - timedelta(minutes=minutes)).count()
    return round(count / minutes, 2)


def propagation_lag(*, now: datetime, minutes: int = 15) -> dict:
    """Average and worst propagation lag over the last `minutes`, in seconds:
    `web_stack` from a change queued for a cart to the cart having it,
    `register` from a sale rung up at a register to the main system
    recording it. Two queries."""
    since = now - timedelta(minutes=minutes)
    stack = StackEntry.objects.filter(state=StackEntry.State.SENT, sent_at__gte=since).aggregate(
        avg=Avg(_STACK_LAG), worst=Max(_STACK_LAG), n=Count("id"))
    register = Receipt.objects.filter(source=Receipt.Source.SYNC, recorded_at__gte=since).aggregate(
        avg=Avg(_REGISTER_LAG), worst=Max(_REGISTER_LAG), n=Count("id"))
    return {
        "web_stack": {"avg": _seconds(stack["avg"]), "max": _seconds(stack["worst"]), "n": stack["n"]},
        "register": {"avg": _seconds(register["avg"]), "max": _seconds(register["worst"]), "n": register["n"]},
    }


def activity_24h(*, now: datetime) -> list[dict]:
    """24 hourly buckets, oldest first: stock moves written, web-stack
    records sent and their average / worst propagation lag (seconds). Two
    grouped queries."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=24)
    buckets = {start + timedelta(hours=i): {"hour": start + timedelta(hours=i), "moves": 0, "sent": 0,
                                             "lag_avg": None, "lag_max": None} for i in range(24)}
    for row in (StockMove.objects.filter(created_at__gte=start).order_by()
                .annotate(hour=TruncHour("created_at")).values("hour").annotate(n=Count("id"))):
        if row["hour"] in buckets:
            buckets[row["hour"]]["moves"] = row["n"]
    for row in (StackEntry.objects.filter(state=StackEntry.State.SENT, sent_at__gte=start).order_by()
                .annotate(hour=TruncHour("sent_at")).values("hour")
                .annotate(n=Count("id"), avg=Avg(_STACK_LAG), worst=Max(_STACK_LAG))):
        if row["hour"] in buckets:
            buckets[row["hour"]].update(sent=row["n"], lag_avg=_seconds(row["avg"]), lag_max=_seconds(row["worst"]))
    return list(buckets.values())


def sync_health_get(*, now: datetime | None = None) -> SyncHealth:
    """The whole dashboard: every row with its status, and the overall one."""
    now = now or timezone.now()
    health = SyncHealth(
        now=now,
        registers=register_health_list(now=now),
        cabinets=cabinet_health_list(now=now),
        stores=store_health_list(now=now),
        ledger=ledger_health_get(now=now),
        queues=queue_health_get(now=now),
        moves_per_minute=moves_per_minute(now=now),
        lag_seconds=propagation_lag(now=now),
        schedules=schedule_health_list(now=now),
        changes=change_delivery_health_get(),
    )
    cabinet_rejections_apply(health.cabinets, now=now)
    health.sections = {
        "registers": worst(r.status for r in health.registers),
        "cabinets": worst(c.status for c in health.cabinets),
        "stores": worst(s.status for s in health.stores),
        "ledger": health.ledger.status,
        "queues": health.queues.status,
        "schedules": worst(s.status for s in health.schedules) if health.schedules else GREEN,
        "changes": health.changes.status,
    }
    health.status = worst(s for s in health.sections.values() if s != GREY) if any(
        s != GREY for s in health.sections.values()) else GREEN
    return health
