"""Leases: one worker at a time per object (a register's sync, a store's pull)."""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from posinv.models import Lease


def lease_holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_acquire(*, key: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease on `key` for `seconds`; False if another holder has it."""
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    with transaction.atomic():
        taken = (
            Lease.objects.filter(key=key)
            .filter(Q(expires_at__lt=now) | Q(holder=holder))
            .update(holder=holder, expires_at=until)
        )
        if taken:
            return True
        try:
            with transaction.atomic():
                Lease.objects.create(key=key, holder=holder, expires_at=until)
            return True
        except IntegrityError:
            return False


def lease_release(*, key: str, holder: str) -> None:
    Lease.objects.filter(key=key, holder=holder).delete()


@contextmanager
def leased(key: str, *, seconds: float = 300):
    """Context manager yielding True while this process holds the lease on `key`."""
    holder = lease_holder_name()
    acquired = lease_acquire(key=key, holder=holder, seconds=seconds)
    try:
        yield acquired
    finally:
        if acquired:
            lease_release(key=key, holder=holder)
