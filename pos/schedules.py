"""What the pos app needs run periodically (a schedule provider, see
posinv/scheduling.py). On a register node: the push (and the settings
refresh it includes) every interval, unless backing off. On the main
system: each pull register's pull every interval, the advance of entries
freed from a gap, and a retry of failed entries every RETRY_SECONDS.
When a periodic run is due (interval, backoff after failures) is the
scheduler's one rule (posinv/scheduling.py); the node's own backoff
(`retry_after`, set while the main system is unreachable) holds the push."""
from __future__ import annotations

from django.conf import settings
from django.db.models import Exists, OuterRef

from pos.models import CashRegister, SyncEntry
from pos.services.node import MAX_BACKOFF_SECONDS
from posinv.scheduling import Due

RETRY_SECONDS = 900
DEFAULT_NODE_INTERVAL = 60  # CashRegister.interval_seconds default


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
    code = settings.POSINV_REGISTER_CODE
    register = CashRegister.objects.filter(code=code).first()
    # Not set up yet: the push fetches the settings, tried every default interval.
    interval = register.interval_seconds if register is not None else DEFAULT_NODE_INTERVAL
    yield Due(key=f"register-push:{code}", func="pos.jobs.register_push_job", ttl=_key_ttl(),
              interval_seconds=interval, run=("register_push", code),
              last_run_at=register.last_success_at if register is not None else None,
              not_before=register.retry_after if register is not None else None,
              backoff_max_seconds=MAX_BACKOFF_SECONDS)


def _main_due(now):
    pulls = CashRegister.objects.filter(active=True, sync_type=CashRegister.SyncType.PULL).exclude(node_url="")
    for register in pulls.only("code", "last_success_at", "interval_seconds"):
        yield Due(
            key=f"register-pull:{register.code}",
            func="pos.jobs.register_pull_job",
            kwargs={"register_code": register.code},
            ttl=_key_ttl(),
            interval_seconds=register.interval_seconds,
            run=("register_pull", register.code),
            last_run_at=register.last_success_at,
            backoff_max_seconds=MAX_BACKOFF_SECONDS,
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
    for code in failing.values_list("code", flat=True):
        yield Due(key=f"entries-retry:{code}", func="pos.jobs.entries_retry_job", kwargs={"register_code": code},
                  ttl=900, interval_seconds=RETRY_SECONDS, run=("entries_retry", code))
