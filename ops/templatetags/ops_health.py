"""`{% ops_health_banner %}`: the sync-health status on the admin index."""
from __future__ import annotations

from django import template

from ops.selectors import sync_health_get

register = template.Library()


@register.inclusion_tag("ops/banner.html", takes_context=True)
def ops_health_banner(context):
    """Nothing (and no queries) for a user who may not see the sync health."""
    from ops.views import may_see_sync_health

    request = context.get("request")
    if request is None or not may_see_sync_health(request.user):
        return {"health": None}
    health = sync_health_get()
    attention = [name for name, status in health.sections.items() if status in ("red", "amber")]
    return {"health": health, "attention": attention}


@register.filter
def seconds(value) -> str:
    """A number of seconds as a person reads it: 42 s, 3.5 min, 2.1 h, 4.0 d."""
    if value is None or value == "":
        return "—"
    value = float(value)
    if value < 120:
        return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    if value < 172800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"
