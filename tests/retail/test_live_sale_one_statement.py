"""On PostgreSQL a plain live sale is written by one statement
(`posinv_live_sale_write`, docs/adr/0009). These tests hold it to the general
path of the Python ledger: the same sales through both write the same rows
and answer the same, and whatever the statement leaves to the general path
(a refusal, a used move key) ends as the general path says, with nothing of
the statement left behind."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import django_rq
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pos.models import PaymentLine, Receipt, ReceiptLine
from pos.services.receipts import line_move_key
from posinv.exceptions import InvalidInput
from posinv.models import StockChange, StockLevel, StockMove
from posinv.queueing import PENDING_PREFIX
from posinv.services.changes import changes_wake_forget
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from retail.models import LiveSale
from retail.services.sales import SaleLine, SalePayment, live_sale_post
from tests.factories import make_article, make_barcode, make_location
from tests.retail.conftest import EAN13, PACK_GTIN14, UPCA
from tests.retail.factories import make_priced_article, make_till, stock_in, with_check

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

GUM_CODE = with_check("400555000001")
WHEN = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)

# Sales that cover what the write does: two lines of one article with a net
# of zero (no level update, no outbox row), a return, a pack, a price flag, an
# article without a level or a price yet, a discount, a given receipt no.,
# payments, and a sale that takes a level below zero where that is allowed.
SALES = [
    dict(
        lines=[SaleLine(code=EAN13, quantity=Decimal("2"), price=Decimal("1.99")),
               SaleLine(code=UPCA, quantity=Decimal("1"), price=Decimal("0.89"))],
        payments=[SalePayment(method="card", amount=Decimal("4.87"))],
    ),
    dict(
        lines=[SaleLine(sku="PEN-01", quantity=Decimal("1"), price=Decimal("1.99")),
               SaleLine(code=EAN13, quantity=Decimal("-1"), price=Decimal("1.99")),
               SaleLine(code=UPCA, quantity=Decimal("-2"), price=Decimal("0.89"))],
        payments=[SalePayment(method="cash", amount=Decimal("-1.78"))],
    ),
    dict(
        lines=[SaleLine(code=PACK_GTIN14, quantity=Decimal("1"), price=Decimal("23.88")),
               SaleLine(code=UPCA, quantity=Decimal("3"), price=Decimal("1.00"))],
        payments=[SalePayment(method="card", amount=Decimal("20")), SalePayment(method="cash", amount=Decimal("6.88"))],
    ),
    dict(
        lines=[SaleLine(code=GUM_CODE, quantity=Decimal("2.5"), price=Decimal("0.40"), discount=Decimal("0.10"))],
        receipt_no="R-77",
    ),
    dict(lines=[SaleLine(code=EAN13, quantity=Decimal("60"), price=Decimal("1.99"))]),
]


@pytest.fixture
def articles(group):
    pen = make_priced_article(sku="PEN-01", price="1.99", group=group, barcode=EAN13, pack=(PACK_GTIN14, "12"))
    soda = make_priced_article(sku="SODA-1", price="0.89", group=group, barcode=UPCA)
    gum = make_article(sku="GUM-1")  # no price, no level anywhere yet
    make_barcode(article=gum, code=GUM_CODE)
    return pen, soda, gum


def _store_with_till(code: str, articles, group):
    location = make_location(code=f"S-{code}")
    register, _ = make_till(location=location, code=code, group=group)
    pen, soda, _ = articles
    stock_in(article=pen, location=location, quantity="50")
    stock_in(article=soda, location=location, quantity="20")
    return register


def _sell(register, number: int, sale: dict):
    return live_sale_post(register=register, idempotency_key=f"till-{number}", created_at=WHEN, **sale)


def _written(register) -> dict:
    """Everything the sales of `register` wrote, with the register's and location's own names taken out."""
    code, location = register.code, register.location

    def plain(text: str) -> str:
        return text.replace(code, "<register>").replace(location.code, "<location>")

    moves = {m.pk: m for m in StockMove.objects.filter(location=location, origin="register")}
    return {
        "receipts": list(
            Receipt.objects.filter(register=register).order_by("pk").values_list(
                "receipt_no", "total", "currency", "source", "process_id", "customer_id", "created_at"
            )
        ),
        "lines": [
            (line.receipt.receipt_no, line.line_no, line.article_id, line.sku, line.barcode, line.quantity,
             line.unit_price, line.discount, moves[line.stock_move_id].kind, moves[line.stock_move_id].quantity,
             moves[line.stock_move_id].balance_after, plain(moves[line.stock_move_id].idempotency_key),
             moves[line.stock_move_id].reference, plain(moves[line.stock_move_id].origin_code))
            for line in ReceiptLine.objects.filter(receipt__register=register).select_related("receipt").order_by("pk")
        ],
        "moves": [(m.article_id, m.kind, m.quantity, m.balance_after) for _, m in sorted(moves.items())],
        "payments": list(
            PaymentLine.objects.filter(receipt__register=register).order_by("pk").values_list(
                "receipt__receipt_no", "line_no", "method", "amount"
            )
        ),
        "levels": sorted(StockLevel.objects.filter(location=location).values_list("article_id", "on_hand")),
        "outbox": [
            (change.article_id, change.on_hand, change.origin, plain(change.origin_code))
            for change in StockChange.objects.filter(location=location, origin="register").order_by("pk")
        ],
        "live_sales": [
            (sale.idempotency_key, sale.request_hash, _plain_body(sale.response, register), sale.flags, sale.flagged,
             sale.line_count, sale.total, sale.replays)
            for sale in LiveSale.objects.filter(register=register).order_by("pk")
        ],
    }


def _plain_body(body: dict, register) -> dict:
    return {**body, "register": "<register>", "location": "<location>"}


def test_the_one_statement_write_records_what_the_general_path_records(articles, group, settings):
    one = _store_with_till("ONE", articles, group)
    general = _store_with_till("GEN", articles, group)

    for number, sale in enumerate(SALES):
        settings.POSINV_LIVE_SALE_ONE_STATEMENT = True
        with CaptureQueriesContext(connection) as one_statement:
            by_one = _sell(one, number, sale)
        settings.POSINV_LIVE_SALE_ONE_STATEMENT = False
        with CaptureQueriesContext(connection) as general_path:
            by_general = _sell(general, number, sale)

        writes = [q["sql"] for q in one_statement.captured_queries if "posinv_live_sale_write" in q["sql"]]
        assert len(writes) == 1
        assert not any("INSERT" in q["sql"] for q in one_statement.captured_queries)
        assert not any("posinv_live_sale_write" in q["sql"] for q in general_path.captured_queries)
        assert _plain_body(by_one.body, one) == _plain_body(by_general.body, general)
        assert not by_one.replayed and not by_general.replayed

    assert _written(one) == _written(general)
    written = _written(one)
    # The sales did what the list above says they do (so the comparison compared something).
    assert len(written["receipts"]) == len(SALES)
    assert written["levels"][0][1] == Decimal("50") - 2 - 1 + 1 - 12 - 60
    assert [flag["code"] for flag in written["live_sales"][2][3]] == ["price_mismatch"]
    assert [flag["code"] for flag in written["live_sales"][3][3]] == ["no_master_price"]
    pen = articles[0]
    second_receipt_no = written["receipts"][1][0]
    pen_lines = [line for line in written["lines"] if line[0] == second_receipt_no and line[2] == pen.pk]
    assert [line[9] for line in pen_lines] == [Decimal("-1"), Decimal("1")]
    # Net zero for the pen in the second sale: its level and outbox were left alone.
    assert len(written["outbox"]) == 2 + 1 + 2 + 1 + 1


def test_a_retry_through_the_one_statement_write_gets_the_first_answer_and_moves_nothing(articles, group):
    register = _store_with_till("R1", articles, group)
    first = _sell(register, 1, SALES[0])
    moves = StockMove.objects.count()

    again = _sell(register, 1, SALES[0])

    assert again.replayed and again.body == first.body
    assert StockMove.objects.count() == moves
    assert LiveSale.objects.get(register=register).replays == 1


def test_a_refusal_leaves_nothing_of_the_statement_behind(articles, group):
    """The statement creates the gum's level before it sees the refusal; the
    general path then refuses the sale whole and neither keeps anything."""
    location = make_location(code="S-REF", refuse_negative=True)
    register, _ = make_till(location=location, code="REF", group=group)
    stock_in(article=articles[0], location=location, quantity="1")
    lines = [SaleLine(code=GUM_CODE, quantity=Decimal("-1"), price=Decimal("0.40")),
             SaleLine(code=EAN13, quantity=Decimal("2"), price=Decimal("1.99"))]

    with pytest.raises(InvalidInput) as refused:
        live_sale_post(register=register, idempotency_key="till-x", lines=lines)

    assert [(p.field, p.code) for p in refused.value.problems] == [("lines[1].quantity", "negative_stock")]
    assert not Receipt.objects.filter(register=register).exists()
    assert not LiveSale.objects.filter(register=register).exists()
    assert list(StockLevel.objects.filter(location=location).values_list("article_id", "on_hand")) == [
        (articles[0].pk, Decimal("1.000"))
    ]


def test_a_line_whose_move_key_was_posted_before_is_left_to_the_ledger(articles, group):
    """A move under a receipt line's key exists already (the receipt came by
    another way and was removed): the statement rolls back on the unique key,
    and the general path's ledger takes that line as posted before."""
    register = _store_with_till("R2", articles, group)
    pen = articles[0]
    receipt_no = "R-1"
    key = line_move_key(register_code="R2", receipt_no=receipt_no, line_no=1)
    stock_moves_post(
        moves=[MoveSpec(kind="sale", idempotency_key=key, quantity=Decimal("-2"), article_id=pen.pk,
                        location_id=register.location_id, reference=f"receipt {receipt_no}")],
        origin=StockOrigin(kind="register", code="R2"),
    )

    outcome = _sell(register, 9, {**SALES[0], "receipt_no": receipt_no})

    assert [line["on_hand"] for line in outcome.body["lines"]] == ["48.000", "19.000"]
    assert StockMove.objects.filter(location=register.location, kind="sale").count() == 2
    assert StockLevel.objects.get(article=pen, location=register.location).on_hand == Decimal("48")
    assert Receipt.objects.get(register=register).lines.count() == 2


def test_a_quantity_beyond_the_ledgers_limit_is_refused_as_the_ledger_refuses_it(articles, group):
    register = _store_with_till("BIG", articles, group)
    lines = [SaleLine(code=EAN13, quantity=Decimal("1000000000.5"), price=Decimal("0.00"))]

    with pytest.raises(InvalidInput) as refused:
        live_sale_post(register=register, idempotency_key="till-big", lines=lines)

    assert [p.field for p in refused.value.problems] == ["lines[0].quantity"]
    assert "999,999,999.999 (the system's quantity bound)" in refused.value.problems[0].reason
    assert not Receipt.objects.filter(register=register).exists()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_only_a_sale_that_changed_stock_wakes_the_change_dispatcher(articles, group, rq_mode):
    """In its own transaction, as in production: the wake-up follows the commit."""
    register = _store_with_till("WAKE", articles, group)
    dispatcher_queue = django_rq.get_queue("high")
    # The stock taken in above queued a run; start from none queued.
    dispatcher_queue.empty()
    rq_mode.delete(PENDING_PREFIX + "changes-dispatch")
    changes_wake_forget()
    net_zero = [SaleLine(code=EAN13, quantity=Decimal("1"), price=Decimal("1.99")),
                SaleLine(code=EAN13, quantity=Decimal("-1"), price=Decimal("1.99"))]

    live_sale_post(register=register, idempotency_key="till-zero", lines=net_zero)
    assert dispatcher_queue.count == 0
    assert not StockChange.objects.filter(location=register.location, origin="register").exists()

    live_sale_post(register=register, idempotency_key="till-one", lines=net_zero[:1])
    assert dispatcher_queue.count == 1
    assert StockChange.objects.filter(location=register.location, origin="register").count() == 1
