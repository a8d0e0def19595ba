"""With Redis unreachable, a write whose wake-up job cannot be queued still
commits and answers normally: the wake-up is best effort (a sweep catches up),
the write is not. Proven end to end for live sales by test_fault_redis.py;
these pin the other on-commit wake-ups, in-process, against a Redis port
where nothing listens."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from carts.models import ExternalStore, StackEntry
from posinv.models import StockChange, StockLevel
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_down(settings):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.POSINV_JOBS_INLINE = False
    settings.RQ_QUEUES = {name: {"URL": dead, "DEFAULT_TIMEOUT": 60} for name in settings.RQ_QUEUES}
    return dead


def test_a_ledger_post_commits_and_returns_while_redis_is_down(redis_down):
    article, store = make_article(sku="RD-1"), make_location(code="RD")
    result = stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key="rd-1", sku="RD-1",
                                              location_id=store.pk, quantity=Decimal(5))],
                              origin=StockOrigin("user", "clerk"))
    assert result.results[0].status == "posted"
    assert StockLevel.objects.get(article=article, location=store).on_hand == Decimal(5)
    assert StockChange.objects.count() == 1  # the announcement waits in the database


def test_a_stack_retry_commits_and_returns_while_redis_is_down(redis_down):
    from carts.services.stack import stack_retry

    article = make_article(sku="RD-2")
    store = ExternalStore.objects.create(code="rd", name="RD", platform="shopify", url="http://127.0.0.1:9",
                                         secrets={"access_token": "x"})
    entry = StackEntry.objects.create(store=store, article=article, quantity=3, state="failed", attempts=9,
                                      next_attempt_at=timezone.now())
    assert stack_retry(entry_ids=[entry.pk]) == 1
    entry.refresh_from_db()
    assert (entry.state, entry.attempts) == ("waiting", 0)
