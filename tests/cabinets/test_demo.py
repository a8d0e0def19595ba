"""The demo loader fills a cabinet that shows every state in the admin."""
from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from cabinets.models import Tray, WeighingCabinet, WeightReading
from posinv.models import ReorderSuggestion, StockLevel

pytestmark = pytest.mark.django_db


def test_demo_data_creates_the_screw_cabinet_once_with_readings_and_suggestions(capsys, settings):
    settings.POSINV_DEMO_LOADERS = ["cabinets.demo.cabinets_demo_load"]  # the core's data, then ours only
    call_command("demo_data", stdout=StringIO())
    call_command("demo_data", stdout=StringIO())  # idempotent: nothing doubled

    cabinet = WeighingCabinet.objects.get(code="CAB1")
    assert "demo cabinet CAB1: device token " in capsys.readouterr().out
    trays = Tray.objects.filter(cabinet=cabinet).order_by("tray_id")
    assert list(trays.values_list("tray_id", "quantity", "state")) == [
        ("T-0001", Decimal("72"), "filled"),
        ("T-0002", Decimal("23"), "filled"),
        ("T-0003", Decimal("37"), "filled"),  # the last reading is held as ambiguous
        ("T-0004", Decimal("192"), "filled"),
        ("T-0005", Decimal("28"), "filled"),
    ]
    assert WeightReading.objects.filter(cabinet=cabinet).count() == 65
    assert WeightReading.objects.filter(cabinet=cabinet, outcome="held").count() == 1
    assert sorted(
        ReorderSuggestion.objects.filter(source="tray", state="open").values_list("source_ref", flat=True)
    ) == ["CAB1/T-0002", "CAB1/T-0003"]
    assert StockLevel.objects.get(article__sku="SCR-4x40", location=cabinet.location).on_hand == Decimal("72")
