"""The reference till client: a CSV of scans and sales replayed over real HTTP."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from posinv.models import PriceGroup, StockLevel
from retail.models import LiveSale
from tests.factories import make_location
from tests.retail.conftest import EAN8, EAN13, UPCA
from tests.retail.factories import make_priced_article, make_till, stock_in

HEADER = "kind,sale,code,sku,quantity,price,discount,method,amount\n"
CSV = HEADER + (
    f"scan,,{EAN13},,,,,,\n"
    f"line,S-1,{EAN13},,2,1.99,,,\n"
    f"line,S-1,{UPCA},,1,0.79,,,\n"
    "payment,S-1,,,,,,card,4.77\n"
    f"scan,,{UPCA},,,,,,\n"
    "line,S-2,,PEN-01,-1,1.99,,,\n"
    "payment,S-2,,,,,,cash,-1.99\n"
)


@pytest.fixture
def live_till(transactional_db):
    group = PriceGroup.objects.create(code="RETAIL", name="Retail")
    shop = make_location(code="S1")
    _, token = make_till(location=shop, group=group)
    pen = make_priced_article(sku="PEN-01", price="1.99", group=group, barcode=EAN13)
    soda = make_priced_article(sku="SODA-1", price="0.89", group=group, barcode=UPCA)
    stock_in(article=pen, location=shop, quantity="10")
    stock_in(article=soda, location=shop, quantity="5")
    return token, pen, soda, shop


def replay(path, url, token, **options):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("till_replay", str(path), url=url, token=token, stdout=out, stderr=err, **options)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), str(exc)
    return out.getvalue(), err.getvalue(), None


def test_replay_posts_scans_and_sales_over_http_and_a_second_run_records_nothing_twice(
    live_server, live_till, tmp_path
):
    token, pen, soda, shop = live_till
    path = tmp_path / "till7.csv"
    path.write_text(CSV)

    out, err, failure = replay(path, live_server.url, token)

    assert (err, failure) == ("", None)
    lines = out.splitlines()
    assert lines[0] == "[1/4] scan 4006381333931: PEN-01 x 1.000 at 1.99 EUR, on hand 10.000"
    assert lines[1].startswith("[2/4] sale S-1: receipt L-")
    assert lines[1].endswith("total 4.77; on hand PEN-01 8.000, SODA-1 4.000; 1 price flag(s)")
    assert lines[2] == "[3/4] scan 036000291452: SODA-1 x 1.000 at 0.89 EUR, on hand 4.000"
    assert lines[3].endswith("total -1.99; on hand PEN-01 9.000")
    assert lines[4] == "2 scan(s), 2 sale(s) (0 replayed, 1 flagged), 0 failed"
    assert set(LiveSale.objects.values_list("idempotency_key", flat=True)) == {"till7:S-1", "till7:S-2"}

    again, _, failure = replay(path, live_server.url, token)

    assert failure is None
    assert again.splitlines()[-1] == "2 scan(s), 2 sale(s) (2 replayed, 1 flagged), 0 failed"
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("9")
    assert StockLevel.objects.get(article=soda, location=shop).on_hand == Decimal("4")


def test_a_failed_step_stops_the_replay_and_exits_non_zero(live_server, live_till, tmp_path):
    token, pen, _, shop = live_till
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + f"scan,,{EAN8},,,,,,\nline,S-1,{EAN13},,1,1.99,,,\n")

    out, err, failure = replay(path, live_server.url, token)

    assert err == f"[1/2] FAILED scan {EAN8}: 404 code: no article with barcode '{EAN8}'\n"
    assert failure == "0 scan(s), 0 sale(s) (0 replayed, 0 flagged), 1 failed"
    assert StockLevel.objects.get(article=pen, location=shop).on_hand == Decimal("10")


def test_a_malformed_file_is_refused_before_anything_is_sent(tmp_path):
    missing = tmp_path / "missing.csv"
    missing.write_text("kind,code\nscan,123\n")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(HEADER + "refund,S-1,,,,,,,\nline,,,PEN-01,1,1,,,\n")

    with pytest.raises(CommandError) as no_columns:
        call_command("till_replay", str(missing), url="http://127.0.0.1:9", token="t")
    with pytest.raises(CommandError) as bad_rows:
        call_command("till_replay", str(wrong), url="http://127.0.0.1:9", token="t")
    with pytest.raises(CommandError) as no_token:
        call_command("till_replay", str(wrong), url="http://127.0.0.1:9", token="")

    assert str(no_columns.value) == (
        f"{missing}: missing column(s) sale, sku, quantity, price, discount, method, amount; "
        "expected kind,sale,code,sku,quantity,price,discount,method,amount"
    )
    assert str(bad_rows.value) == (
        f"{wrong}: row 2: kind 'refund' is not one of scan, line, payment; row 3: a line needs a sale reference"
    )
    assert str(no_token.value) == "a register token is required (--token or POSINV_TILL_TOKEN)"
