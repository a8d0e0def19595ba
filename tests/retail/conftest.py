"""Fixtures of the retail tests: a store with a till and priced articles."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from posinv.models import PriceGroup
from tests.factories import make_location
from tests.retail.factories import make_priced_article, make_till

# Real GS1 codes with correct check digits.
EAN13 = "4006381333931"
UPCA = "036000291452"
EAN8 = "96385074"
PACK_GTIN14 = "14006381333938"


@pytest.fixture
def group(db):
    return PriceGroup.objects.create(code="RETAIL", name="Retail")


@pytest.fixture
def shop(db):
    return make_location(code="S1", name="Main street")


@pytest.fixture
def till(shop, group):
    register, token = make_till(location=shop, group=group)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.register = register
    return client


@pytest.fixture
def pen(group):
    return make_priced_article(sku="PEN-01", price="1.99", group=group, barcode=EAN13, pack=(PACK_GTIN14, "12"))


@pytest.fixture
def soda(group):
    return make_priced_article(sku="SODA-1", price="0.89", group=group, barcode=UPCA)
