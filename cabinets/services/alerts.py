"""Shrink alerts: acknowledged by a person once looked into."""
from __future__ import annotations

from collections.abc import Iterable

from cabinets.models import ShrinkAlert


def shrink_alerts_acknowledge(*, alert_ids: Iterable[int]) -> int:
    """Mark the alerts as looked into; returns how many changed."""
    return ShrinkAlert.objects.filter(pk__in=list(alert_ids), acknowledged=False).update(acknowledged=True)
