"""Concurrent writers on PostgreSQL: real connections, one per thread, all
posting to the same article and location at once."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from posinv.exceptions import LedgerRefused
from posinv.models import StockLevel, StockMove
from posinv.selectors import ledger_drift
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 8


def run_threads(target, count: int) -> list[BaseException]:
    """Start `count` threads at once (a barrier), wait for all; return their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(n: int):
        try:
            barrier.wait()
            target(n)
        except BaseException as exc:  # collected and asserted by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_many_threads_posting_to_one_pair_lose_no_update():
    article = make_article(sku="HOT")
    store = make_location(code="S1")
    batches_per_thread, lines = 10, 5

    def post(n: int):
        for b in range(batches_per_thread):
            stock_moves_post(
                moves=[
                    MoveSpec(
                        kind="sale",
                        idempotency_key=f"t{n}-b{b}-l{i}",
                        quantity=Decimal("-1.5"),
                        sku="HOT",
                        location_code="S1",
                    )
                    for i in range(lines)
                ]
                # every thread also replays its previous batch's first key: never moves twice
                + (
                    [
                        MoveSpec(
                            kind="sale",
                            idempotency_key=f"t{n}-b{b - 1}-l0",
                            quantity=Decimal("-1.5"),
                            sku="HOT",
                            location_code="S1",
                        )
                    ]
                    if b
                    else []
                ),
                origin=StockOrigin(kind="register", code=f"R{n}"),
            )

    errors = run_threads(post, THREADS)

    assert errors == []
    posted = THREADS * batches_per_thread * lines
    assert StockMove.objects.count() == posted
    assert StockLevel.objects.get(article=article, location=store).on_hand == Decimal("-1.5") * posted
    balances = sorted(StockMove.objects.values_list("balance_after", flat=True))
    # Every move saw a distinct running balance: the writers were serialized.
    assert balances == [Decimal("-1.5") * k for k in range(posted, 0, -1)]
    assert list(ledger_drift()) == []


def test_race_on_a_refusing_location_sells_exactly_the_stock():
    article = make_article(sku="LAST")
    kiosk = make_location(code="K1", refuse_negative=True)
    stock_moves_post(
        moves=[MoveSpec(kind="receipt", idempotency_key="in", quantity=Decimal("20"), sku="LAST", location_code="K1")],
        origin=StockOrigin(kind="user", code="clerk"),
    )
    sold, refused = [], []
    lock = threading.Lock()

    def sell(n: int):
        for i in range(5):  # 8 threads x 5 tries = 40 buyers for 20 units
            try:
                stock_moves_post(
                    moves=[
                        MoveSpec(
                            kind="sale",
                            idempotency_key=f"buy-{n}-{i}",
                            quantity=Decimal("-1"),
                            sku="LAST",
                            location_code="K1",
                        )
                    ],
                    origin=StockOrigin(kind="register", code=f"R{n}"),
                )
            except LedgerRefused as exc:
                with lock:
                    refused.append(exc.problems[0].code)
            else:
                with lock:
                    sold.append(n)

    errors = run_threads(sell, THREADS)

    assert errors == []
    assert len(sold) == 20
    assert refused == ["negative_stock"] * 20
    assert StockLevel.objects.get(article=article, location=kiosk).on_hand == Decimal("0")
    assert StockMove.objects.filter(kind="sale").count() == 20
    assert list(ledger_drift()) == []


def test_count_and_sales_racing_end_at_the_count_plus_later_sales():
    """A count is turned into a difference under the lock, so sales landing
    before or after it are neither lost nor counted twice."""
    article = make_article(sku="CNT")
    store = make_location(code="S1")

    def work(n: int):
        if n == 0:
            stock_moves_post(
                moves=[
                    MoveSpec(
                        kind="count", idempotency_key="count", counted=Decimal("100"), sku="CNT", location_code="S1"
                    )
                ],
                origin=StockOrigin(kind="cabinet", code="CAB"),
            )
        else:
            for i in range(5):
                stock_moves_post(
                    moves=[
                        MoveSpec(
                            kind="sale",
                            idempotency_key=f"s{n}-{i}",
                            quantity=Decimal("-1"),
                            sku="CNT",
                            location_code="S1",
                        )
                    ],
                    origin=StockOrigin(kind="register", code=f"R{n}"),
                )

    errors = run_threads(work, THREADS)

    assert errors == []
    count = StockMove.objects.get(idempotency_key="count")
    sales_after_count = StockMove.objects.filter(kind="sale", pk__gt=count.pk).count()
    assert StockLevel.objects.get(article=article, location=store).on_hand == Decimal(100 - sales_after_count)
    assert list(ledger_drift()) == []


def test_same_new_key_racing_on_different_pairs_posts_once_and_refuses_the_rest():
    """Different pairs take different row locks, so only the unique key
    stops the second insert; the batch is retried and sees the conflict."""
    make_article(sku="K")
    for n in range(THREADS):
        make_location(code=f"L{n}")
    outcomes: list[str] = []
    lock = threading.Lock()

    def post(n: int):
        try:
            stock_moves_post(
                moves=[
                    MoveSpec(
                        kind="adjustment",
                        idempotency_key="same-key",
                        quantity=Decimal("1"),
                        sku="K",
                        location_code=f"L{n}",
                    )
                ],
                origin=StockOrigin(kind="user", code=f"u{n}"),
            )
            outcome = "posted"
        except LedgerRefused as exc:
            outcome = exc.problems[0].code
        with lock:
            outcomes.append(outcome)

    errors = run_threads(post, THREADS)

    assert errors == []
    assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["posted"]
    assert StockMove.objects.count() == 1
    assert list(ledger_drift()) == []
