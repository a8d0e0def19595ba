"""Fixtures of the cabinet tests: a cabinet on its own location with one
tray of a 10 g article (tare 100 g), and helpers to build readings."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cabinets.models import Tray, WeighingCabinet
from cabinets.services.provisioning import cabinet_create
from cabinets.services.readings import ReadingIn
from tests.factories import make_article
from tests.fakes.cabinet_vendor import FakeCabinetVendor

T0 = datetime(2026, 5, 3, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """A read time `minutes` after T0."""
    return T0 + timedelta(minutes=minutes)


def reading(tray_id: str = "T-1", grams: str = "200", minutes: float = 0, position: str = "") -> ReadingIn:
    return ReadingIn(tray_id=tray_id, weight_g=Decimal(grams), read_at=at(minutes), position=position)


@pytest.fixture
def cabinet_and_token(db):
    return cabinet_create(code="CAB1", location_code="CAB-LOC", name="Screw cabinet")


@pytest.fixture
def cabinet(cabinet_and_token):
    return cabinet_and_token[0]


@pytest.fixture
def screw(db):
    return make_article(sku="SCR-1", name="Screw", unit_weight_g=Decimal("10"))


@pytest.fixture
def tray(cabinet, screw):
    return Tray.objects.create(
        cabinet=cabinet, tray_id="T-1", article=screw, tare_g=Decimal("100"), threshold=Decimal("5")
    )


@pytest.fixture
def vendor():
    """The fake cabinet vendor's pull API (tests/fakes/cabinet_vendor.py)."""
    with FakeCabinetVendor(api_key="k-123", page_max=100) as fake:
        yield fake


@pytest.fixture
def pulling(cabinet, tray, vendor):
    """The cabinet set to pull its readings from `vendor`."""
    WeighingCabinet.objects.filter(pk=cabinet.pk).update(
        pull_url=vendor.url("SN-1"), pull_api_key="k-123", pull_timeout_seconds=2
    )
    cabinet.refresh_from_db()
    return cabinet
