"""Property test of the weight-to-quantity rule: random batches of readings
(noisy, ambiguous, out of order, repeated, bad) over three trays of two
articles. After every batch: each article's on_hand at the cabinet equals
the sum of its trays' quantities and the sum of its moves; quantities are
whole and never negative; a replayed batch answers duplicates and moves
nothing (rejected readings are judged again, and rejected again)."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cabinets.models import Tray
from cabinets.services.provisioning import cabinet_create
from cabinets.services.readings import ReadingIn, readings_apply
from posinv.models import StockLevel, StockMove
from tests.factories import make_article

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 5, 3, 8, 0, tzinfo=UTC)
TRAYS = ("T-1", "T-2", "T-3", "T-404")  # T-1 and T-2 hold the same article; T-404 does not exist
_run = itertools.count()

readings_st = st.builds(
    lambda tray, units, noise, minute, position: ReadingIn(
        tray_id=tray,
        # tare 100 g, 10 g a piece; noise up to +-6 g makes some readings ambiguous
        weight_g=Decimal(100 + 10 * units) + Decimal(noise) / 2,
        read_at=T0 + timedelta(minutes=minute),
        position=position,
    ),
    tray=st.sampled_from(TRAYS),
    units=st.integers(min_value=-2, max_value=60),
    noise=st.integers(min_value=-12, max_value=12),
    minute=st.integers(min_value=0, max_value=40),
    position=st.sampled_from(["", "A-1", "B-2"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(readings_st, min_size=1, max_size=8), min_size=1, max_size=5))
def test_random_readings_keep_on_hand_equal_to_the_trays_and_the_moves(db, batches):
    n = next(_run)
    screw = make_article(sku=f"P-S{n}", unit_weight_g=Decimal("10"))
    nut = make_article(sku=f"P-N{n}", unit_weight_g=Decimal("10"))
    cabinet, _ = cabinet_create(code=f"P{n}", location_code=f"P{n}-LOC")
    for tray_id, article in (("T-1", screw), ("T-2", screw), ("T-3", nut)):
        Tray.objects.create(cabinet=cabinet, tray_id=tray_id, article=article, tare_g=Decimal("100"),
                            threshold=Decimal("5"))

    for batch in batches:
        result = readings_apply(cabinet=cabinet, readings=batch, via="push", now=T0 + timedelta(hours=1))
        assert [r.status for r in result.results if r.tray_id == "T-404"] == [
            "rejected" for r in batch if r.tray_id == "T-404"
        ]

        moves = StockMove.objects.count()
        again = readings_apply(cabinet=cabinet, readings=batch, via="push", now=T0 + timedelta(hours=1))
        # What was accepted is a duplicate now; what was rejected is judged (and rejected) again.
        assert [a.status for a in again.results] == [
            "rejected" if r.status == "rejected" else "duplicate" for r in result.results
        ]
        assert StockMove.objects.count() == moves

        trays = {t.tray_id: t for t in Tray.objects.filter(cabinet=cabinet)}
        for tray in trays.values():
            assert tray.quantity is None or (tray.quantity >= 0 and tray.quantity == tray.quantity.to_integral())
            assert tray.state == ("filled" if tray.quantity else "empty")
        for article, tray_ids in ((screw, ("T-1", "T-2")), (nut, ("T-3",))):
            in_trays = sum((trays[t].quantity or Decimal(0) for t in tray_ids), Decimal(0))
            level = StockLevel.objects.filter(article=article, location=cabinet.location).first()
            moved = StockMove.objects.filter(article=article, location=cabinet.location).aggregate(s=Sum("quantity"))
            assert (level.on_hand if level else Decimal(0)) == in_trays
            assert Decimal(str(moved["s"] or 0)).quantize(Decimal("0.001")) == in_trays
