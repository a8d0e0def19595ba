"""A small world for the reliability tests: one store with two registers
and two cabinets (each with its device token), a staff user with an API
token, and a priced article with a barcode and stock."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from cabinets.services.provisioning import cabinet_create
from posinv.api.throttling import auth_failures_reset
from posinv.models import PriceGroup
from posinv.services.tokens import token_issue
from tests.factories import make_location
from tests.retail.factories import make_priced_article, make_till, stock_in

EAN13 = "4006381333931"


@dataclass
class World:
    store: object
    article: object
    tokens: dict[str, str]

    def client(self, who: str | None, *, addr: str = "127.0.0.1") -> APIClient:
        """An API client sending `who`'s token (None: no token; 'bad': a wrong one)."""
        client = APIClient(REMOTE_ADDR=addr)
        if who == "bad":
            client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token-0000000000000000000000")
        elif who:
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[who]}")
        return client


@pytest.fixture(autouse=True)
def _fresh_throttle():
    auth_failures_reset()
    yield
    auth_failures_reset()


@pytest.fixture
def world(db, django_user_model) -> World:
    store = make_location(code="S1", name="Main street")
    group = PriceGroup.objects.create(code="RETAIL", name="Retail")
    article = make_priced_article(sku="PEN-01", price="1.99", group=group, barcode=EAN13)
    stock_in(article=article, location=store, quantity="100", key="world-in")
    _, r1 = make_till(location=store, code="R1", group=group)
    _, r2 = make_till(location=store, code="R2", group=group)
    _, c1 = cabinet_create(code="CAB1", location_code="CAB1-LOC", name="Cabinet 1")
    _, c2 = cabinet_create(code="CAB2", location_code="CAB2-LOC", name="Cabinet 2")
    staff = django_user_model.objects.create_user(username="boss", password="boss-pass", is_staff=True,
                                                  is_superuser=True)
    staff_token = token_issue(kind="user", subject=f"user:{staff.pk}", user=staff)
    return World(store=store, article=article,
                 tokens={"R1": r1, "R2": r2, "CAB1": c1, "CAB2": c2, "staff": staff_token})


