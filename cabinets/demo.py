"""Demo data for `make run`: a screw cabinet on the demo location CAB1 with
trays of the demo articles and two hours of readings, so the admin shows
quantities, a weight chart, a held reading and an order suggestion."""
from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from cabinets.models import WeighingCabinet, WeightReading
from cabinets.services.provisioning import cabinet_create, trays_import
from cabinets.services.readings import ReadingIn, readings_apply
from posinv.models import Article

# tray id, sku, tare (g), threshold (units), pieces at the start, pieces taken per 10 minutes
TRAYS = [
    ("T-0001", "SCR-4x40", "412.0", "40", 180, 9),
    ("T-0002", "SCR-5x60", "415.5", "30", 95, 6),
    ("T-0003", "NUT-M8", "409.0", "50", 70, 3),
    ("T-0004", "WSH-M8", "401.0", "60", 240, 4),
    ("T-0005", "BLT-M8x50", "430.0", "10", 40, 1),
]


def cabinets_demo_load() -> None:
    """Create the demo cabinet once (printing its token) and feed it readings."""
    if WeighingCabinet.objects.filter(code="CAB1").exists():
        return
    skus = {sku for _, sku, *_ in TRAYS}
    if Article.objects.filter(sku__in=skus, unit_weight_g__isnull=False).count() != len(skus):
        return  # the core demo articles are missing: nothing to weigh
    cabinet, token = cabinet_create(code="CAB1", location_code="CAB1", name="Screw cabinet", interval_seconds=600)
    sys.stdout.write(f"demo cabinet CAB1: device token {token} (shown once)\n")
    trays_import(
        cabinet=cabinet,
        rows=[{"tray_id": t, "sku": s, "tare_g": tare, "threshold": th} for t, s, tare, th, _, _ in TRAYS],
    )
    weights = dict(Article.objects.filter(sku__in=skus).values_list("sku", "unit_weight_g"))
    now = timezone.now().replace(microsecond=0)
    readings = []
    for step in range(13):
        read_at = now - timedelta(minutes=10 * (12 - step))
        for tray_id, sku, tare, _, start, taken in TRAYS:
            pieces = max(start - taken * step, 0)
            weight = Decimal(tare) + pieces * weights[sku]
            if tray_id == "T-0003" and step == 12:
                weight += weights[sku] / 2  # an item leaning on the edge: held as ambiguous
            readings.append(
                ReadingIn(tray_id=tray_id, weight_g=weight, read_at=read_at, position=f"A-{tray_id[-2:]}")
            )
    readings_apply(cabinet=cabinet, readings=readings, via=WeightReading.Via.PUSH)
