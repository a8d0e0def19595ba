"""`{% ops_health_banner %}`: the sync-health status on the admin index."""
from __future__ import annotations

from django import template

from ops.selectors import sync_health_get

register = template.Library()


@register.inclusion_tag("ops/banner.html")
def ops_health_banner():
    health = sync_health_get()
    attention = [name for name, status in health.sections.items() if status in ("red", "amber")]
    return {"health": health, "attention": attention}
