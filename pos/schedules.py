"""What the pos app needs run periodically (a schedule provider, see
posinv/scheduling.py). On a register node: the push (and the settings
refresh it includes) every interval, unless backing off. On the main
system: each pull register's pull every interval, the advance of entries
freed from a gap, and a retry of failed entries every RETRY_SECONDS."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef

from pos.models import CashRegister, SyncEntry
from posinv.models import JobRun
from posinv.scheduling import Due, is_due

RETRY_SECONDS = 900


def _key_ttl() -> int:
    # The queue key only stops double queueing; the lease stops double runs.
    # Tied to the lease, a worker killed mid-run blocks the next run no longer.
    return max(1, int(settings.POSINV_SYNC_LEASE_SECONDS))


def pos_due(*, now):
    if settings.POSINV_NODE == "register":
        yield from _node_due(now)
    else:
        yield from _main_due(now)


def _node_due(now):
    register = CashRegister.objects.filter(code=settings.POSINV_REGISTER_CODE).first()
    if register is not None:
        if register.retry_after and register.retry_after > now:
            return
        if not is_due(register.last_attempt_at, register.interval_seconds, now):
            return
    yield Due(key=f"register-push:{settings.POSINV_REGISTER_CODE}", func="pos.jobs.register_push_job",
              ttl=_key_ttl())


def _main_due(now):
    pulls = CashRegister.objects.filter(active=True, sync_type=CashRegister.SyncType.PULL).exclude(node_url="")
    for register in pulls.only("code", "last_attempt_at", "interval_seconds"):
        if is_due(register.last_attempt_at, register.interval_seconds, now):
            yield Due(
                key=f"register-pull:{register.code}",
                func="pos.jobs.register_pull_job",
                kwargs={"register_code": register.code},
                ttl=_key_ttl(),
            )
    entries = SyncEntry.objects.filter(register=OuterRef("pk"), direction=SyncEntry.Direction.IN)
    # Entries right behind the watermark that still wait: a gap was filled
    # beyond what one request takes on.
    advancing = CashRegister.objects.filter(
        Exists(entries.filter(state=SyncEntry.State.WAITING, entry_no=OuterRef("last_applied_entry_no") + 1))
    )
    for code in advancing.values_list("code", flat=True):
        yield Due(key=f"entries-advance:{code}", func="pos.jobs.entries_advance_job",
                  kwargs={"register_code": code}, ttl=900)
    failing = CashRegister.objects.filter(Exists(entries.filter(state=SyncEntry.State.FAILED)))
    recent = set(
        JobRun.objects.filter(name="entries_retry", started_at__gt=now - timedelta(seconds=RETRY_SECONDS))
        .values_list("subject", flat=True)
    )
    for code in failing.values_list("code", flat=True):
        if code not in recent:
            yield Due(key=f"entries-retry:{code}", func="pos.jobs.entries_retry_job",
                      kwargs={"register_code": code}, ttl=900)
