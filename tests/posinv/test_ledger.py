"""The ledger service: posting, idempotency, counts, refusals, the outbox."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from posinv.exceptions import LedgerRefused
from posinv.models import StockChange, StockLevel, StockMove
from posinv.services.changes import changes_dispatch
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post, stock_transfer
from tests.factories import make_article, make_location

pytestmark = pytest.mark.django_db
ORIGIN = StockOrigin(kind="register", code="R1")


def on_hand(article, location) -> Decimal:
    return StockLevel.objects.get(article=article, location=location).on_hand


def sale(key: str, qty: str, sku: str = "A-1", loc: str = "S1") -> MoveSpec:
    return MoveSpec(kind="sale", idempotency_key=key, quantity=Decimal(qty), sku=sku, location_code=loc)


def test_batch_posts_moves_and_updates_level_with_running_balance(article, store):
    result = stock_moves_post(
        moves=[
            MoveSpec(kind="receipt", idempotency_key="k0", quantity=Decimal("10"), sku="A-1", location_code="S1"),
            sale("k1", "-2"),
            sale("k2", "-1.5"),
        ],
        origin=ORIGIN,
    )
    assert [r.status for r in result.results] == ["posted", "posted", "posted"]
    assert [r.balance_after for r in result.results] == [Decimal("10"), Decimal("8"), Decimal("6.5")]
    assert on_hand(article, store) == Decimal("6.5")
    move = StockMove.objects.get(idempotency_key="k1")
    assert (move.kind, move.quantity, move.origin, move.origin_code) == ("sale", Decimal("-2"), "register", "R1")


def test_replayed_batch_moves_nothing_and_returns_first_results(article, store):
    moves = [sale("k1", "-2"), sale("k2", "-3")]
    first = stock_moves_post(moves=moves, origin=ORIGIN)
    again = stock_moves_post(moves=moves, origin=ORIGIN)
    assert [r.status for r in again.results] == ["duplicate", "duplicate"]
    assert [r.move_id for r in again.results] == [r.move_id for r in first.results]
    assert [r.balance_after for r in again.results] == [Decimal("-2"), Decimal("-5")]
    assert StockMove.objects.count() == 2
    assert on_hand(article, store) == Decimal("-5")


def test_same_key_in_one_batch_is_a_duplicate_of_the_first(article, store):
    result = stock_moves_post(moves=[sale("k1", "-2"), sale("k1", "-2")], origin=ORIGIN)
    assert [r.status for r in result.results] == ["posted", "duplicate"]
    assert result.results[1].move_id == result.results[0].move_id
    assert on_hand(article, store) == Decimal("-2")


def test_key_reused_with_other_content_is_refused_as_conflict(article, store):
    stock_moves_post(moves=[sale("k1", "-2")], origin=ORIGIN)
    with pytest.raises(LedgerRefused) as refused:
        stock_moves_post(moves=[sale("k1", "-3")], origin=ORIGIN)
    assert refused.value.problems[0].code == "conflict"
    assert on_hand(article, store) == Decimal("-2")


def test_count_posts_the_difference_under_the_lock(article, store):
    stock_moves_post(moves=[sale("k1", "-2")], origin=ORIGIN)
    result = stock_moves_post(
        moves=[MoveSpec(kind="count", idempotency_key="c1", counted=Decimal("7"), sku="A-1", location_code="S1")],
        origin=StockOrigin(kind="cabinet", code="CAB1"),
    )
    assert result.results[0].quantity == Decimal("9")
    assert on_hand(article, store) == Decimal("7")
    move = StockMove.objects.get(idempotency_key="c1")
    assert (move.kind, move.counted, move.quantity) == ("count", Decimal("7"), Decimal("9"))


def test_replayed_count_after_later_sales_moves_nothing(article, store):
    count = MoveSpec(kind="count", idempotency_key="c1", counted=Decimal("7"), sku="A-1", location_code="S1")
    stock_moves_post(moves=[count], origin=ORIGIN)
    stock_moves_post(moves=[sale("k1", "-2")], origin=ORIGIN)
    again = stock_moves_post(moves=[count], origin=ORIGIN)
    assert again.results[0].status == "duplicate"
    assert on_hand(article, store) == Decimal("5")


def test_negative_stock_refused_whole_batch_and_nothing_written(article):
    make_location(code="S1", refuse_negative=True)
    stock_moves_post(
        moves=[MoveSpec(kind="receipt", idempotency_key="r", quantity=Decimal("1"), sku="A-1", location_code="S1")],
        origin=ORIGIN,
    )
    moves_before, changes_before = StockMove.objects.count(), StockChange.objects.count()
    with pytest.raises(LedgerRefused) as refused:
        stock_moves_post(moves=[sale("k1", "-1"), sale("k2", "-1")], origin=ORIGIN)
    problem = refused.value.problems[0]
    assert (problem.index, problem.field, problem.code) == (1, "quantity", "negative_stock")
    assert StockMove.objects.count() == moves_before
    assert StockChange.objects.count() == changes_before
    assert StockLevel.objects.get(article=article).on_hand == Decimal("1")


def test_partial_mode_posts_good_moves_and_reports_refused(article, store):
    result = stock_moves_post(
        moves=[sale("k1", "-1"), sale("k2", "-1", sku="NOPE"), sale("k3", "0")],
        origin=ORIGIN,
        partial_ok=True,
    )
    assert [r.status for r in result.results] == ["posted", "refused", "refused"]
    assert result.results[1].problem.reason == "unknown sku 'NOPE'"
    assert result.results[2].problem.field == "quantity"
    assert on_hand(article, store) == Decimal("-1")


@pytest.mark.parametrize(
    "spec, field, reason",
    [
        (MoveSpec(kind="sale", idempotency_key="x", quantity=Decimal("2"), sku="A-1", location_code="S1"),
         "quantity", "a sale takes stock: the quantity must be negative"),
        (MoveSpec(kind="receipt", idempotency_key="x", quantity=Decimal("-2"), sku="A-1", location_code="S1"),
         "quantity", "a receipt adds stock: the quantity must be positive"),
        (MoveSpec(kind="sale", idempotency_key="x", quantity=Decimal("-0.0001"), sku="A-1", location_code="S1"),
         "quantity", "at most 3 decimal places"),
        (MoveSpec(kind="count", idempotency_key="x", counted=Decimal("-1"), sku="A-1", location_code="S1"),
         "counted", "a counted quantity cannot be negative"),
        (MoveSpec(kind="teleport", idempotency_key="x", quantity=Decimal("1"), sku="A-1", location_code="S1"),
         "kind", "unknown kind 'teleport'; expected one of adjustment, count, order, receipt, return, sale, transfer"),
        (MoveSpec(kind="sale", idempotency_key="x", quantity=Decimal("-1"), sku="A-1", location_code="NOWHERE"),
         "location", "unknown location code 'NOWHERE'"),
        (MoveSpec(kind="sale", idempotency_key="x", quantity=Decimal("NaN"), sku="A-1", location_code="S1"),
         "quantity", "must be a finite number"),
    ],
)
def test_bad_moves_are_refused_with_field_and_reason(article, store, spec, field, reason):
    with pytest.raises(LedgerRefused) as refused:
        stock_moves_post(moves=[spec], origin=ORIGIN)
    assert (refused.value.problems[0].field, refused.value.problems[0].reason) == (field, reason)
    assert not StockMove.objects.exists()


def test_transfer_is_two_moves_in_one_batch(article, store):
    warehouse = make_location(code="W1", kind="warehouse")
    result = stock_transfer(
        article_id=article.pk,
        from_location_id=warehouse.pk,
        to_location_id=store.pk,
        quantity=Decimal("4"),
        idempotency_key="t1",
        origin=StockOrigin(kind="user", code="clerk"),
    )
    assert [r.quantity for r in result.results] == [Decimal("-4"), Decimal("4")]
    assert on_hand(article, warehouse) == Decimal("-4")
    assert on_hand(article, store) == Decimal("4")


def test_outbox_gets_one_row_per_changed_pair_and_dispatch_drains_it(article, store, settings):
    received = []
    settings.POSINV_CHANGE_CONSUMERS = ["tests.posinv.test_ledger.record_changes"]
    RECORDED.clear()
    other = make_article(sku="B-1")
    stock_moves_post(
        moves=[sale("k1", "-1"), sale("k2", "-2"), sale("k3", "-1", sku="B-1")],
        origin=ORIGIN,
    )
    assert sorted(StockChange.objects.values_list("article_id", "on_hand")) == [
        (article.pk, Decimal("-3")),
        (other.pk, Decimal("-1")),
    ]
    assert changes_dispatch() == 2
    received = sorted((c.article_id, c.location_id, c.on_hand, c.origin_code) for c in RECORDED)
    assert received == [(article.pk, store.pk, Decimal("-3"), "R1"), (other.pk, store.pk, Decimal("-1"), "R1")]
    assert not StockChange.objects.exists()
    assert changes_dispatch() == 0


RECORDED: list = []


def record_changes(*, changes):
    RECORDED.extend(changes)


def test_failing_consumer_keeps_the_changes_for_the_next_sweep(article, store, settings):
    settings.POSINV_CHANGE_CONSUMERS = ["tests.posinv.test_ledger.failing_consumer"]
    stock_moves_post(moves=[sale("k1", "-1")], origin=ORIGIN)
    with pytest.raises(RuntimeError):
        changes_dispatch()
    assert StockChange.objects.count() == 1


def failing_consumer(*, changes):
    raise RuntimeError("consumer down")


def test_refused_batch_writes_no_outbox_rows(article, store, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(LedgerRefused):
        stock_moves_post(moves=[sale("k1", "-1"), sale("k2", "-1", sku="NOPE")], origin=ORIGIN)
    assert callbacks == []
    assert not StockChange.objects.exists()


def test_outbox_rows_are_written_with_the_moves(article, store, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stock_moves_post(moves=[sale("k1", "-1"), sale("k2", "-2")], origin=ORIGIN)
    rows = list(StockChange.objects.values_list("article_id", "location_id", "on_hand", "origin", "origin_code"))
    assert rows == [(article.pk, store.pk, Decimal("-3"), "register", "R1")]
    assert len(callbacks) == 1


def test_batch_uses_a_fixed_number_of_statements(store):
    articles = [make_article(sku=f"P-{i}") for i in range(50)]
    moves = [sale(f"q{i}", "-1", sku=a.sku) for i, a in enumerate(articles)]
    stock_moves_post(moves=moves[:1], origin=ORIGIN)  # warm: level exists for one
    with CaptureQueriesContext(connection) as queries:
        stock_moves_post(moves=moves[1:], origin=ORIGIN)
    assert len(queries) <= 14


@pytest.mark.postgres
def test_levels_are_locked_for_update_in_pk_order(article, store):
    with CaptureQueriesContext(connection) as queries:
        stock_moves_post(moves=[sale("k1", "-1")], origin=ORIGIN)
    # Existing levels are locked first, then the newly created one: each in pk order.
    lock = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    assert len(lock) == 2
    assert all(sql.endswith("ORDER BY id FOR UPDATE") for sql in lock)
    with CaptureQueriesContext(connection) as queries:
        stock_moves_post(moves=[sale("k2", "-1")], origin=ORIGIN)
    assert [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]] == lock[:1]


def test_replay_of_a_batch_with_a_repeated_key_reports_both_as_duplicates(article, store):
    first = stock_moves_post(moves=[sale("k1", "-2"), sale("k1", "-2")], origin=ORIGIN)
    again = stock_moves_post(moves=[sale("k1", "-2"), sale("k1", "-2")], origin=ORIGIN)
    assert [r.status for r in again.results] == ["duplicate", "duplicate"]
    assert [r.move_id for r in again.results] == [first.results[0].move_id] * 2
    assert on_hand(article, store) == Decimal("-2")


def test_repeated_key_of_a_refused_move_is_refused_too(article):
    make_location(code="S1", refuse_negative=True)
    result = stock_moves_post(moves=[sale("k1", "-1"), sale("k1", "-1")], origin=ORIGIN, partial_ok=True)
    assert [r.status for r in result.results] == ["refused", "refused"]
    assert result.results[1].problem.reason.endswith("(same key as item 0)")
    assert not StockMove.objects.exists()


def test_the_database_refuses_to_update_a_move(article, store):
    stock_moves_post(moves=[sale("k1", "-2")], origin=ORIGIN)

    with pytest.raises(DatabaseError, match="stock moves are append-only"), transaction.atomic():
        StockMove.objects.filter(idempotency_key="k1").update(quantity=Decimal("-20"))

    assert StockMove.objects.get(idempotency_key="k1").quantity == Decimal("-2")
