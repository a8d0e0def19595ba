"""RQ entry points of the pos app: thin, idempotent, each records its run
(posinv.services.runs) and calls one service. The lease keeps two workers
off the same register."""
from __future__ import annotations

import logging

from django.conf import settings

from pos.models import CashRegister
from pos.services.apply import entries_advance, entries_retry
from pos.services.node import MainUnreachable, is_node, register_push
from pos.services.transfer import NodeUnreachable, register_pull
from posinv.exceptions import InvalidInput
from posinv.services.leases import lease_acquire, lease_holder_name
from posinv.services.runs import job_run

logger = logging.getLogger("posinv.jobs")


def _lease_seconds() -> float:
    return settings.POSINV_SYNC_LEASE_SECONDS


def _renewer(name: str, subject: str):
    """Renew the lease job_run took (same key and holder) before each call,
    so the lease can be short and a killed worker's lapses soon."""
    key, holder = f"job:{name}:{subject}", lease_holder_name()

    def renew() -> None:
        lease_acquire(key=key, holder=holder, seconds=_lease_seconds())

    return renew


def register_push_job() -> dict | None:
    """Register node: send pending entries to the main system."""
    if not is_node():
        logger.warning("register_push_job runs on a register node only; ignored")
        return None
    code = settings.POSINV_REGISTER_CODE
    with job_run("register_push", code, lease_seconds=_lease_seconds()) as counts:
        if counts is None:
            return None
        try:
            counts.update(register_push(heartbeat=_renewer("register_push", code)))
        except MainUnreachable as exc:
            # Expected while the main system is down: the run is recorded failed
            # with the reason, the register backs off, and the entries wait.
            counts["unreachable"] = str(exc)[:300]
            counts.fail(f"the main system is unreachable: {str(exc)[:300]}")
        except InvalidInput as exc:
            # The main system refused the channel itself (token, register, settings).
            counts.fail(f"the main system refused: {str(exc)[:300]}")
        else:
            if counts.get("refused"):
                counts.fail(f"the main system refused {counts['refused']} entries whole; they are kept failed "
                            "on this register (admin: Synchronization entries, state failed)")
        return counts


def register_pull_job(*, register_code: str) -> dict | None:
    """Main system: fetch, apply and acknowledge one pull register's outbox."""
    register = CashRegister.objects.get(code=register_code)
    with job_run("register_pull", register_code, lease_seconds=_lease_seconds()) as counts:
        if counts is None:
            return None
        try:
            counts.update(register_pull(register_id=register.pk, heartbeat=_renewer("register_pull", register_code)))
        except NodeUnreachable as exc:
            # Recorded as failed, so the schedule backs off (posinv/scheduling.py).
            counts["unreachable"] = str(exc)[:300]
            counts.fail(f"the register node is unreachable: {str(exc)[:300]}")
        return counts


def entries_advance_job(*, register_code: str) -> int:
    """Main system: apply waiting entries whose gap has been filled."""
    register = CashRegister.objects.get(code=register_code)
    with job_run("entries_advance", register_code, lease_seconds=_lease_seconds()) as counts:
        if counts is None:
            return 0
        counts["applied"] = entries_advance(register_id=register.pk)
        return counts["applied"]


def entries_retry_job(*, register_code: str) -> dict | None:
    """Main system: retry a register's failed entries (the cause may be fixed by now)."""
    register = CashRegister.objects.get(code=register_code)
    with job_run("entries_retry", register_code, lease_seconds=_lease_seconds()) as counts:
        if counts is None:
            return None
        counts.update(entries_retry(register_id=register.pk))
        return counts
