"""Fixtures of the ops tests: a logged-in admin client, registers with a
device token, a fake cart on real HTTP, and helpers that age rows."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from carts.models import CartSettings
from carts.ratelimit import budgets_reset
from posinv.models import ApiToken
from posinv.services.tokens import token_issue
from tests.factories import make_location
from tests.fakes.woocommerce import FakeWooCommerce


@pytest.fixture(autouse=True)
def _fresh_budgets():
    budgets_reset()
    yield
    budgets_reset()


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def register_client():
    """An API client factory: `register_client("R1")` carries R1's device token."""

    def make(code: str) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(kind=ApiToken.Kind.REGISTER, subject=code)}")
        return api

    return make


@pytest.fixture
def sync_on(db):
    return CartSettings.objects.create(pk=1, synch_qoh=True, max_attempts=2, backoff_base_seconds=0.05,
                                       backoff_cap_seconds=0.2, claim_seconds=5)


@pytest.fixture
def woo():
    with FakeWooCommerce() as fake:
        yield fake


@pytest.fixture
def shop_location(db):
    return make_location(code="WEB", name="Web warehouse", kind="warehouse")


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)
