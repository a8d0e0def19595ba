"""POST /api/v1/sales/: real-time decrement, idempotent retries, returns,
negative-stock refusal, price flags, and the last-unit race on PostgreSQL."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from pos.models import PaymentLine, Receipt, ReceiptLine
from posinv.exceptions import InvalidInput
from posinv.models import Location, StockChange, StockLevel, StockMove
from retail.models import LiveSale, ScaleLayout
from tests.factories import make_location
from tests.retail.conftest import EAN13, PACK_GTIN14, UPCA
from tests.retail.factories import make_priced_article, make_till, stock_in, with_check

pytestmark = pytest.mark.django_db


def sell(client, body, key="till-1-000001"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post("/api/v1/sales/", body, format="json", **headers)


def on_hand(article, location) -> Decimal:
    return StockLevel.objects.get(article=article, location=location).on_hand


def nothing_written():
    return (
        Receipt.objects.count(),
        LiveSale.objects.count(),
        StockMove.objects.filter(kind__in=["sale", "return"]).count(),
    )


@pytest.fixture
def stocked(pen, soda, shop):
    stock_in(article=pen, location=shop, quantity="50")
    stock_in(article=soda, location=shop, quantity="20")


def test_sale_decrements_stock_in_the_same_call_and_answers_each_lines_on_hand(till, pen, soda, shop, stocked):
    response = sell(
        till,
        {
            "lines": [
                {"code": EAN13, "quantity": "2", "price": "1.99"},
                {"code": UPCA, "quantity": "3", "price": "0.89"},
                {"sku": "PEN-01", "quantity": "1", "price": "1.99", "discount": "0.50"},
            ],
            "payments": [{"method": "card", "amount": "8.14"}],
            "customer": {"customer_no": "C-1001", "name": "Ada Lovelace", "card_no": "LOY-1"},
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert [(line["sku"], line["code"], line["quantity"], line["on_hand"]) for line in body["lines"]] == [
        ("PEN-01", EAN13, "2.000", "48.000"),
        ("SODA-1", UPCA, "3.000", "17.000"),
        ("PEN-01", None, "1.000", "47.000"),
    ]
    assert (body["total"], body["currency"], body["register"], body["location"], body["flags"]) == (
        "8.14",
        "EUR",
        "R1",
        "S1",
        [],
    )
    assert (on_hand(pen, shop), on_hand(soda, shop)) == (Decimal("47"), Decimal("17"))
    receipt = Receipt.objects.get(receipt_no=body["receipt_no"])
    assert (receipt.source, receipt.total, receipt.customer.customer_no) == ("live", Decimal("8.14"), "C-1001")
    assert list(PaymentLine.objects.values_list("method", "amount")) == [("card", Decimal("8.14"))]
    # Every other channel hears of it: one outbox row per changed pair, written in the sale's transaction.
    assert set(
        StockChange.objects.filter(origin="register", origin_code="R1").values_list("article__sku", "on_hand")
    ) == {("PEN-01", Decimal("47")), ("SODA-1", Decimal("17"))}


def test_retry_with_the_same_key_returns_the_first_answer_and_moves_nothing(till, pen, shop, stocked):
    body = {
        "lines": [{"code": EAN13, "quantity": "2", "price": "1.99"}],
        "payments": [{"method": "cash", "amount": "3.98"}],
    }
    first = sell(till, body)
    moves_after_first = StockMove.objects.count()

    retry = sell(
        till,
        {
            "lines": [{"code": EAN13, "quantity": "2.000", "price": "1.99"}],
            "payments": [{"method": "cash", "amount": "3.98"}],
        },
    )

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert first.get("Idempotent-Replayed") is None
    assert StockMove.objects.count() == moves_after_first
    assert on_hand(pen, shop) == Decimal("48")
    assert LiveSale.objects.get().replays == 1


def test_same_key_with_a_different_body_is_409_and_moves_nothing(till, pen, shop, stocked):
    sell(till, {"lines": [{"code": EAN13, "quantity": "2", "price": "1.99"}]})
    before = StockMove.objects.count()

    response = sell(till, {"lines": [{"code": EAN13, "quantity": "3", "price": "1.99"}]})

    assert response.status_code == 409
    assert response.json() == {
        "errors": [
            {
                "field": "Idempotency-Key",
                "code": "conflict",
                "reason": "key 'till-1-000001' was used before for a different sale",
            }
        ]
    }
    assert StockMove.objects.count() == before
    assert on_hand(pen, shop) == Decimal("48")


def test_the_same_key_on_another_register_is_another_sale(till, pen, shop, stocked, group):
    _, token = make_till(location=shop, code="R2", group=group)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]}

    assert sell(till, body).status_code == 201
    assert sell(other, body).status_code == 201
    assert on_hand(pen, shop) == Decimal("48")


def test_a_return_puts_stock_back(till, pen, shop, stocked):
    response = sell(
        till,
        {
            "lines": [{"code": EAN13, "quantity": "-2", "price": "1.99"}],
            "payments": [{"method": "cash", "amount": "-3.98"}],
        },
        key="ret-1",
    )

    assert response.status_code == 201
    assert (response.json()["lines"][0]["on_hand"], response.json()["total"]) == ("52.000", "-3.98")
    assert StockMove.objects.get(reference__startswith="receipt L-").kind == "return"
    assert on_hand(pen, shop) == Decimal("52")


def test_pack_barcode_sells_the_units_in_the_pack(till, pen, shop, stocked):
    response = sell(till, {"lines": [{"code": PACK_GTIN14, "quantity": "2", "price": "23.88"}]})

    line = response.json()["lines"][0]
    assert (line["quantity"], line["on_hand"], response.json()["flags"]) == ("24.000", "26.000", [])
    assert ReceiptLine.objects.get().unit_price == Decimal("1.99")


def test_scale_label_sells_the_weight_on_the_label(till, shop, group):
    ScaleLayout.objects.create(prefix="21", content="weight")
    gouda = make_priced_article(sku="GOUDA", price="12.80", group=group, barcode=with_check("210123400000"), unit="kg")
    stock_in(article=gouda, location=shop, quantity="8.415")

    response = sell(till, {"lines": [{"code": with_check("210123401250"), "quantity": "1", "price": "16.00"}]})

    assert response.status_code == 201
    assert (response.json()["lines"][0]["quantity"], response.json()["lines"][0]["on_hand"]) == ("1.250", "7.165")


def test_a_sale_breaking_a_refusing_locations_policy_is_refused_whole_with_line_and_reason(till, pen, soda, shop):
    Location.objects.filter(pk=shop.pk).update(negative_stock=Location.NegativeStock.REFUSE)
    stock_in(article=pen, location=shop, quantity="5")
    stock_in(article=soda, location=shop, quantity="1")
    moves_before = StockMove.objects.count()

    response = sell(
        till,
        {
            "lines": [
                {"code": EAN13, "quantity": "2", "price": "1.99"},
                {"code": UPCA, "quantity": "2", "price": "0.89"},
            ]
        },
    )

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("lines[1].quantity", "negative_stock")
    # PostgreSQL keeps the column's scale (1.000), SQLite does not (1).
    assert error["reason"] in {
        "would leave -1.000 on hand (now 1.000); this location refuses negative stock",
        "would leave -1 on hand (now 1); this location refuses negative stock",
    }
    assert nothing_written() == (0, 0, 0)
    assert StockMove.objects.count() == moves_before
    assert (on_hand(pen, shop), on_hand(soda, shop)) == (Decimal("5"), Decimal("1"))


def test_a_price_disagreeing_with_master_data_is_accepted_and_flagged(till, pen, shop, stocked):
    response = sell(
        till,
        {
            "lines": [
                {"code": EAN13, "quantity": "1", "price": "1.49"},
                {"code": UPCA, "quantity": "1", "price": "0.89"},
            ]
        },
    )

    assert response.status_code == 201
    assert response.json()["flags"] == [
        {
            "line_no": 1,
            "field": "lines[0].price",
            "code": "price_mismatch",
            "sent": "1.49",
            "expected": "1.99",
            "reason": "the till charged 1.49, master data says 1.99",
        }
    ]
    assert on_hand(pen, shop) == Decimal("49")
    sale = LiveSale.objects.get()
    assert (sale.flagged, sale.total) == (True, Decimal("2.38"))
    assert ReceiptLine.objects.get(line_no=1).unit_price == Decimal("1.49")


@pytest.mark.parametrize(
    ("body", "key", "errors"),
    [
        (
            {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]},
            None,
            [
                {
                    "field": "Idempotency-Key",
                    "code": "required",
                    "reason": "header required, 1 to 120 printable characters",
                }
            ],
        ),
        ({"lines": []}, "k1", [{"field": "lines", "code": "empty", "reason": "This list may not be empty."}]),
        (
            {"lines": [{"code": EAN13, "quantity": "1.0001", "price": "1.99"}]},
            "k2",
            [
                {
                    "field": "lines[0].quantity",
                    "code": "max_decimal_places",
                    "reason": "Ensure that there are no more than 3 decimal places.",
                }
            ],
        ),
        (
            {"lines": [{"code": EAN13, "sku": "PEN-01", "quantity": "1", "price": "1.99"}]},
            "k3",
            [{"field": "lines[0].code", "code": "invalid", "reason": "give either a scanned code or a sku, not both"}],
        ),
        (
            {"lines": [{"sku": "NOPE", "quantity": "1", "price": "1.99"}]},
            "k4",
            [{"field": "lines[0].sku", "code": "not_found", "reason": "no article with sku 'NOPE'"}],
        ),
        (
            {"lines": [{"code": "96385074", "quantity": "1", "price": "1.99"}]},
            "k5",
            [{"field": "lines[0].code", "code": "not_found", "reason": "no article with barcode '96385074'"}],
        ),
        (
            {"lines": [{"code": "4006381333932", "quantity": "1", "price": "1.99"}]},
            "k6",
            [
                {
                    "field": "lines[0].code",
                    "code": "check_digit",
                    "reason": "barcode '4006381333932' has check digit 2, expected 1 (EAN-13)",
                }
            ],
        ),
        (
            {"lines": [{"code": EAN13, "quantity": "0", "price": "1.99"}]},
            "k7",
            [{"field": "lines[0].quantity", "code": "invalid", "reason": "must not be zero"}],
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_written(till, pen, shop, stocked, body, key, errors):
    response = sell(till, body, key=key)

    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert nothing_written() == (0, 0, 0)
    assert on_hand(pen, shop) == Decimal("50")


def test_sale_needs_a_register_token(staff_client, pen):
    response = staff_client.post("/api/v1/sales/", {"lines": []}, format="json", HTTP_IDEMPOTENCY_KEY="x")

    assert response.status_code == 403


def test_sale_runs_in_a_constant_number_of_queries(till, pen, soda, shop, stocked, django_assert_max_num_queries):
    lines = [
        {"code": EAN13, "quantity": "1", "price": "1.99"},
        {"code": UPCA, "quantity": "1", "price": "0.89"},
        {"sku": "PEN-01", "quantity": "1", "price": "1.99"},
    ]
    sell(till, {"lines": lines}, key="warm")  # creates the levels; later sales only update them

    with django_assert_max_num_queries(30) as captured:
        assert sell(till, {"lines": lines}, key="second").status_code == 201
    three = len(captured)
    with django_assert_max_num_queries(three):
        assert sell(till, {"lines": lines * 4}, key="twelve").status_code == 201


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sales_of_the_last_unit_on_a_refusing_location_exactly_one_wins(group):
    shop = make_location(code="S9", refuse_negative=True)
    register, token = make_till(location=shop, code="R9", group=group)
    pen = make_priced_article(sku="LAST-1", price="9.99", group=group, barcode=EAN13)
    stock_in(article=pen, location=shop, quantity="1")
    barrier = threading.Barrier(6)
    answers: list[tuple[int, dict]] = []

    def till_sells(n: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        barrier.wait()
        try:
            response = sell(client, {"lines": [{"code": EAN13, "quantity": "1", "price": "9.99"}]}, key=f"race-{n}")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=till_sells, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 400, 400, 400, 400, 400]
    assert all(body["errors"][0]["code"] == "negative_stock" for status, body in answers if status == 400)
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("0")
    assert (Receipt.objects.count(), LiveSale.objects.count(), StockMove.objects.filter(kind="sale").count()) == (
        1,
        1,
        1,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_key_record_one_sale(group):
    shop = make_location(code="S8")
    register, token = make_till(location=shop, code="R8", group=group)
    pen = make_priced_article(sku="KEY-1", price="1.00", group=group, barcode=EAN13)
    stock_in(article=pen, location=shop, quantity="10")
    barrier = threading.Barrier(4)
    answers: list[tuple[int, dict]] = []

    def till_retries() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        barrier.wait()
        try:
            response = sell(client, {"lines": [{"code": EAN13, "quantity": "1", "price": "1.00"}]}, key="same")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=till_retries) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [status for status, _ in answers] == [201, 201, 201, 201]
    assert len({body["receipt_no"] for _, body in answers}) == 1
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("9")
    assert StockMove.objects.filter(kind="sale").count() == 1


def test_the_service_refuses_numbers_the_api_would_never_send(shop, group, pen):
    from retail.services.sales import SaleLine, live_sale_post

    register, _ = make_till(location=shop, code="R5", group=group)

    with pytest.raises(InvalidInput) as caught:
        live_sale_post(
            register=register,
            idempotency_key="svc-1",
            lines=[
                SaleLine(code=EAN13, quantity=Decimal("NaN"), price=Decimal("-1")),
                SaleLine(sku="PEN-01", quantity=Decimal("0"), price=Decimal("1.999")),
            ],
        )

    assert [(p.field, p.reason) for p in caught.value.problems] == [
        ("lines[0].quantity", "Decimal('NaN') is not a number with at most 3 decimal places"),
        ("lines[0].price", "must not be negative"),
        ("lines[1].price", "Decimal('1.999') is not a number with at most 2 decimal places"),
        ("lines[1].quantity", "must not be zero"),
    ]
    assert nothing_written() == (0, 0, 0)


@pytest.mark.redis
def test_a_sale_wakes_the_change_dispatcher_on_rq_and_a_worker_drains_the_outbox(
    rq_mode, till, pen, shop, stocked, django_capture_on_commit_callbacks
):
    import django_rq
    from rq.worker import SimpleWorker

    StockChange.objects.all().delete()  # the stock-in moves' rows; only the sale's matter here
    with django_capture_on_commit_callbacks(execute=True):
        assert sell(till, {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]}).status_code == 201
    queue = django_rq.get_queue("high")
    assert (queue.count, StockChange.objects.count()) == (1, 1)

    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    assert (queue.count, StockChange.objects.count()) == (0, 0)


def test_old_idempotency_records_are_pruned_and_receipts_stay(till, pen, shop, stocked):
    import io
    from datetime import timedelta

    from django.core.management import CommandError, call_command
    from django.utils import timezone

    sell(till, {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]}, key="old")
    sell(till, {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]}, key="new")
    LiveSale.objects.filter(idempotency_key="old").update(created_at=timezone.now() - timedelta(days=31))
    out = io.StringIO()

    call_command("live_sales_prune", "--older-than-days", "30", stdout=out)

    assert out.getvalue() == "1 live-sale idempotency record(s) older than 30 days deleted\n"
    assert list(LiveSale.objects.values_list("idempotency_key", flat=True)) == ["new"]
    assert Receipt.objects.count() == 2
    retry = sell(till, {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]}, key="old")
    assert (retry.status_code, retry.json()["errors"][0]["field"]) == (409, "receipt_no")
    assert on_hand(pen, shop) == Decimal("48")
    with pytest.raises(CommandError, match="older_than_days: must be at least 1"):
        call_command("live_sales_prune", "--older-than-days", "0")


def test_the_prune_is_scheduled_daily_and_records_its_run(till, pen, shop, stocked, settings):
    from datetime import timedelta

    from django.utils import timezone

    from posinv.models import JobRun
    from posinv.scheduling import scheduler_tick

    settings.POSINV_SCHEDULE_PROVIDERS = ["retail.schedules.retail_due"]
    sell(till, {"lines": [{"code": EAN13, "quantity": "1", "price": "1.99"}]}, key="ancient")
    LiveSale.objects.update(created_at=timezone.now() - timedelta(days=40))

    first = scheduler_tick()  # inline mode: the job runs at once
    second = scheduler_tick()

    assert (first, second) == (["live-sales-prune"], [])
    run = JobRun.objects.get(name="live_sales_prune")
    assert (run.status, run.counts) == ("succeeded", {"deleted": 1})
    assert LiveSale.objects.count() == 0
