"""The one bound on quantities and amounts (posinv/bounds.py, issue #16):
the staff API refuses a figure beyond it with a 400 naming the field, the
ledger holds every level within it, the schema shows it, and the change
dispatcher isolates a pair it cannot deliver while serving every other."""
from __future__ import annotations

from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator

from ops.selectors import sync_health_get
from posinv.bounds import QUANTITY_MAX, published_quantity
from posinv.exceptions import LedgerRefused
from posinv.models import ChangeFailure, ReorderSuggestion, StockChange, StockLevel
from posinv.services.changes import change_failures_retry, changes_dispatch
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article

pytestmark = pytest.mark.django_db
ORIGIN = StockOrigin(kind="user", code="clerk")
SUGGESTIONS = "posinv.services.suggestions.suggestions_refresh_for_changes"
REFUSING = "tests.posinv.test_bounds.consumer_refusing_poison"


def move(key: str, quantity: str, sku: str = "A-1", kind: str = "receipt", location: str = "S1") -> MoveSpec:
    return MoveSpec(kind=kind, idempotency_key=key, quantity=Decimal(quantity), sku=sku, location_code=location)


def on_hand(sku: str = "A-1", location: str = "S1") -> Decimal:
    return StockLevel.objects.get(article__sku=sku, location__code=location).on_hand


# -- the ledger --------------------------------------------------------------

def test_a_move_beyond_the_bound_is_refused_naming_the_field(article, store):
    with pytest.raises(LedgerRefused) as refused:
        stock_moves_post(moves=[move("big", "3000000000")], origin=ORIGIN)

    problem = refused.value.problems[0]
    assert (problem.field, problem.code) == ("quantity", "out_of_bounds")
    assert "999,999,999.999" in problem.reason
    assert not StockLevel.objects.filter(article=article, on_hand__gt=0).exists()


def test_a_level_is_held_within_the_bound_though_each_move_is_within_it(article, store):
    stock_moves_post(moves=[move("k1", "999999999")], origin=ORIGIN)

    with pytest.raises(LedgerRefused) as refused:
        stock_moves_post(moves=[move("k2", "999999999")], origin=ORIGIN)

    problem = refused.value.problems[0]
    assert (problem.field, problem.code) == ("quantity", "out_of_bounds")
    assert "would take on hand to 1999999998 (now 999999999)" in problem.reason
    assert on_hand() == Decimal("999999999")
    # The same on the way down: a return of a till beyond the bound below zero.
    stock_moves_post(moves=[move("k3", "-999999999", kind="adjustment")], origin=ORIGIN)
    stock_moves_post(moves=[move("k4", "-999999999", kind="sale")], origin=ORIGIN)
    with pytest.raises(LedgerRefused):
        stock_moves_post(moves=[move("k5", "-1", kind="sale")], origin=ORIGIN)
    assert on_hand() == -QUANTITY_MAX + Decimal("0.999")


def test_a_level_poisoned_before_the_bound_can_only_be_brought_back(article, store):
    stock_moves_post(moves=[move("k1", "5")], origin=ORIGIN)
    # As an old database restored from before the bound might hold it.
    StockLevel.objects.filter(article=article).update(on_hand=Decimal("3000000000"))

    with pytest.raises(LedgerRefused):
        stock_moves_post(moves=[move("more", "1")], origin=ORIGIN)
    stock_moves_post(moves=[move("less", "-1", kind="sale")], origin=ORIGIN)
    stock_moves_post(
        moves=[MoveSpec(kind="count", idempotency_key="fix", counted=Decimal("7"), sku="A-1", location_code="S1")],
        origin=ORIGIN,
    )

    assert on_hand() == Decimal("7")


def test_a_published_figure_fits_a_32_bit_platform_field():
    assert published_quantity(Decimal("3000000000")) == 999_999_999 < 2**31 - 1
    assert published_quantity(Decimal("-5")) == 0
    assert published_quantity(Decimal("12.9")) == 12


# -- the staff moves API -----------------------------------------------------

@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "receipt", "quantity": "3000000000"}, "moves[0].quantity"),
        ({"kind": "sale", "quantity": "-99999999999"}, "moves[0].quantity"),
        ({"kind": "count", "counted": "1000000000"}, "moves[0].counted"),
    ],
)
def test_the_staff_api_refuses_a_figure_beyond_the_bound_with_a_400_naming_the_field(
    staff_client, article, store, body, field
):
    response = staff_client.post(
        "/api/v1/stock-moves/",
        {"moves": [{"idempotency_key": "m1", "sku": "A-1", "location": "S1", **body}]},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert "quantity bound" in errors[0]["reason"]
    assert not StockLevel.objects.filter(article=article).exists()


def test_the_staff_api_refuses_a_move_that_would_take_a_level_beyond_the_bound(staff_client, article, store):
    stock_moves_post(moves=[move("k1", "999999999")], origin=ORIGIN)

    response = staff_client.post(
        "/api/v1/stock-moves/",
        {"moves": [{"kind": "receipt", "idempotency_key": "m2", "sku": "A-1", "location": "S1", "quantity": "5"}]},
        format="json",
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("moves[0].quantity", "out_of_bounds")]
    assert on_hand() == Decimal("999999999")


def test_the_schema_shows_the_bound_on_every_entrance():
    document = SchemaGenerator().get_schema(request=None, public=True)
    schemas = document["components"]["schemas"]

    for name, prop, bound in [
        ("MoveInRequest", "quantity", "999,999,999.999"),
        ("MoveInRequest", "counted", "999,999,999.999"),
        ("SaleLineInRequest", "quantity", "999,999,999.999"),
        ("SaleLineInRequest", "price", "999,999,999.99"),
        ("LineInRequest", "quantity", "999,999,999.999"),
        ("PaymentInRequest", "amount", "999,999,999.99"),
        ("SalePaymentInRequest", "amount", "999,999,999.99"),
        ("TransferLineInRequest", "quantity", "999,999,999.999"),
    ]:
        field = schemas[name]["properties"][prop]
        places = bound.rsplit(".", 1)[1]
        assert field["pattern"] == rf"^-?\d{{0,9}}(?:\.\d{{0,{len(places)}}})?$", (name, prop)
        assert bound in field["description"], (name, prop)


# -- the change dispatcher ---------------------------------------------------

delivered: list[int] = []


def consumer_refusing_poison(*, changes):
    """A consumer that cannot handle one product (as a connector's integer
    field could not hold a figure), and records what it handled."""
    poison = {c.article_id for c in changes if c.article.sku == "POISON"}
    if poison:
        raise ValueError("value 3000000000 out of range for type integer")
    delivered.extend(c.article_id for c in changes)


@pytest.fixture
def shelf(store):
    articles = [make_article(sku=sku) for sku in ("POISON", "B-1", "C-1")]
    stock_moves_post(moves=[move(f"in-{a.sku}", "5", sku=a.sku) for a in articles], origin=ORIGIN)
    StockLevel.objects.filter(location=store).update(reorder_point=Decimal("10"))
    changes_dispatch()
    delivered.clear()
    return articles


def test_a_level_beyond_the_bound_is_set_aside_and_every_other_change_is_delivered(store, shelf, settings):
    settings.POSINV_CHANGE_CONSUMERS = [SUGGESTIONS]
    poison, b, c = shelf
    StockLevel.objects.filter(article=poison).update(on_hand=Decimal("3000000000"))
    stock_moves_post(
        moves=[move("s-p", "-1", sku="POISON", kind="sale"), move("s-b", "-1", sku="B-1", kind="sale"),
               move("s-c", "-2", sku="C-1", kind="sale")],
        origin=ORIGIN,
    )

    changes_dispatch()

    assert not StockChange.objects.exists()
    open_rows = ReorderSuggestion.objects.filter(state="open").order_by("article__sku")
    assert [(s.article.sku, s.quantity_on_hand) for s in open_rows] == [
        ("B-1", Decimal("4")), ("C-1", Decimal("3")), ("POISON", Decimal("5"))]  # POISON's is from before
    failure = ChangeFailure.objects.get()
    assert (failure.article_id, failure.consumer, failure.on_hand) == (poison.pk, SUGGESTIONS, Decimal("2999999999"))
    assert "beyond the quantity bound" in failure.reason and "correct this level" in failure.reason
    health = sync_health_get()
    assert health.sections["changes"] == "red"
    assert "POISON at S1" in health.changes.reason

    # Corrected by a count: the next change goes through and the pair is no longer listed.
    stock_moves_post(
        moves=[MoveSpec(kind="count", idempotency_key="fix", counted=Decimal("20"), sku="POISON", location_code="S1")],
        origin=ORIGIN,
    )
    changes_dispatch()
    assert not ChangeFailure.objects.exists()
    assert sync_health_get().sections["changes"] == "green"
    assert not ReorderSuggestion.objects.filter(article=poison, state="open").exists()


def test_a_consumer_failing_for_one_pair_skips_that_pair_only(store, shelf, settings):
    settings.POSINV_CHANGE_CONSUMERS = [REFUSING, SUGGESTIONS]
    poison, b, c = shelf
    stock_moves_post(
        moves=[move(f"s-{a.sku}", "-1", sku=a.sku, kind="sale") for a in shelf],
        origin=ORIGIN,
    )

    handled = changes_dispatch()

    assert handled == 3
    assert sorted(delivered) == sorted([b.pk, c.pk])
    failure = ChangeFailure.objects.get()
    assert (failure.consumer, failure.article_id) == (REFUSING, poison.pk)
    assert failure.reason == "ValueError: value 3000000000 out of range for type integer"
    # The other consumer handled every pair, the poisoned one too.
    assert ReorderSuggestion.objects.filter(state="open", quantity_on_hand=Decimal("4")).count() == 3

    # Handing it again after the cause is fixed: delivered, and no longer listed.
    poison.sku = "FIXED"
    poison.save()
    assert change_failures_retry(failure_ids=[failure.pk]) == 1
    changes_dispatch()
    assert poison.pk in delivered
    assert not ChangeFailure.objects.exists()


def consumer_down(*, changes):
    raise ConnectionError("stock service unreachable")


def test_a_consumer_failing_for_every_pair_keeps_the_whole_batch(store, shelf, settings):
    settings.POSINV_CHANGE_CONSUMERS = [SUGGESTIONS, "tests.posinv.test_bounds.consumer_down"]
    stock_moves_post(moves=[move(f"s-{a.sku}", "-1", sku=a.sku, kind="sale") for a in shelf[1:]], origin=ORIGIN)

    with pytest.raises(ConnectionError):
        changes_dispatch()

    assert StockChange.objects.count() == 2  # waiting for the next sweep, not skipped
    assert not ChangeFailure.objects.exists()
    assert not ReorderSuggestion.objects.filter(state="open", quantity_on_hand=Decimal("4")).exists()


def test_the_dashboard_and_the_admin_show_an_undelivered_pair_and_hand_it_again(store, shelf, settings, admin_client):
    settings.POSINV_CHANGE_CONSUMERS = [SUGGESTIONS]
    poison = shelf[0]
    StockLevel.objects.filter(article=poison).update(on_hand=Decimal("3000000000"))
    stock_moves_post(moves=[move("s-p", "-1", sku="POISON", kind="sale")], origin=ORIGIN)
    changes_dispatch()

    dashboard = admin_client.get("/ops/health/").content.decode()
    listing = admin_client.get("/admin/posinv/changefailure/").content.decode()

    assert 'id="ops-changes"' in dashboard and "POISON at S1: on hand 2999999999 is beyond" in dashboard
    assert "POISON" in listing and "correct this level with a count" in listing
    failure = ChangeFailure.objects.get()
    answer = admin_client.post("/admin/posinv/changefailure/",
                               {"action": "deliver_again", "_selected_action": [failure.pk]})
    assert answer.status_code == 302
    assert StockChange.objects.filter(article=poison, origin="system", origin_code="retry").count() == 1
