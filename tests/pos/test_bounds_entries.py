"""Register entries and the bound on quantities and amounts (posinv/bounds.py,
issue #16): a record carrying a figure beyond it is kept failed, naming the
entry and the field, and moves no stock; the rest of the batch goes on."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from pos.models import SyncEntry
from posinv.models import ApiToken, StockMove
from posinv.services.tokens import token_issue
from tests.pos.factories import make_register, receipt_entries

pytestmark = pytest.mark.django_db
URL = "/api/v1/registers/R1/entries/"


@pytest.fixture
def client(store, article):
    make_register(code="R1", location=store)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind=ApiToken.Kind.REGISTER, subject='R1')}")
    return client


@pytest.mark.parametrize(
    ("index", "name", "value", "words"),
    [
        (1, "quantity", "3000000000.000", "quantity bound"),
        (1, "quantity", "-99999999999.000", "quantity bound"),
        (1, "unit_price", "1000000000.00", "amount bound"),
        (0, "total", "-1000000000.00", "amount bound"),
        (2, "amount", "1000000000.00", "amount bound"),
    ],
)
def test_a_record_beyond_the_bound_is_kept_failed_naming_entry_and_field(client, index, name, value, words):
    entries = receipt_entries(1, "R1-000001", [("A-1", "2", "1.20")])
    entries[index]["record"][name] = value

    response = client.post(URL, {"entries": entries}, format="json")

    assert response.status_code == 200
    (failure,) = response.json()["failures"]
    assert (failure["entry_no"], failure["field"]) == (entries[index]["entry_no"], f"record.{name}")
    assert words in failure["reason"]
    assert SyncEntry.objects.get(entry_no=entries[index]["entry_no"]).state == "failed"
    assert not StockMove.objects.filter(quantity__gt=999_999_999).exists()
    assert not StockMove.objects.filter(quantity__lt=-999_999_999).exists()


def test_a_count_beyond_the_bound_is_refused(client):
    entry = {"entry_no": 1, "table": "stock_count", "record_id": "stock_count:1",
             "record": {"sku": "A-1", "counted_qty": "1000000000.000", "counted_at": "2026-03-02T09:00:00+00:00"}}

    response = client.post(URL, {"entries": [entry]}, format="json")

    assert response.status_code == 200
    assert [f["field"] for f in response.json()["failures"]] == ["record.counted_qty"]
    assert not StockMove.objects.exists()
