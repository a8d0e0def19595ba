"""Two pushes of the same readings at the same moment (a cabinet retrying
while its first request is still running): the tray row lock serializes
them, so one applies and the other gets duplicates; stock moves once."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from cabinets.models import Tray, WeightReading
from cabinets.services.provisioning import cabinet_create
from cabinets.services.readings import readings_apply
from posinv.models import StockLevel, StockMove
from tests.cabinets.conftest import at, reading
from tests.factories import make_article

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_batch_pushed_twice_at_once_moves_stock_once():
    screw = make_article(sku="SCR-C", unit_weight_g=Decimal("10"))
    cabinet, _ = cabinet_create(code="CABC", location_code="CABC-LOC")
    Tray.objects.bulk_create(
        [Tray(cabinet=cabinet, tray_id=f"T-{i}", article=screw, tare_g=Decimal("100")) for i in range(50)]
    )
    batch = [reading(tray_id=f"T-{i}", grams="200", minutes=0) for i in range(50)]
    start = threading.Barrier(2)
    answers, errors = [], []

    def push():
        try:
            start.wait()
            answers.append(readings_apply(cabinet=cabinet, readings=batch, via="push", now=at(60)).counts())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=push) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted((a["applied"], a["duplicate"]) for a in answers) == [(0, 50), (50, 0)]
    assert WeightReading.objects.count() == 50
    assert StockMove.objects.count() == 50
    assert StockLevel.objects.get(article=screw, location=cabinet.location).on_hand == Decimal("500")
