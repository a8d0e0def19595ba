"""End to end: a gunicorn main system on its own database, a till replaying
a CSV through the reference client in another process, and the stock seen
by a scan afterwards. Real processes, real HTTP."""

from __future__ import annotations

import pytest
import requests

from tests.retail.conftest import EAN13, UPCA
from tests.support.processes import database_url, manage, process_env, started_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEED = f"""
from datetime import date
from decimal import Decimal
from pos.models import CashRegister
from posinv.models import Article, Barcode, Location, Price, PriceGroup, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_issue
group = PriceGroup.objects.create(code="RETAIL", name="Retail")
shop = Location.objects.create(code="S1", name="Shop", negative_stock="refuse")
CashRegister.objects.create(code="R1", location=shop, price_group=group)
for sku, code, price in (("PEN-01", "{EAN13}", "1.99"), ("SODA-1", "{UPCA}", "0.89")):
    article = Article.objects.create(sku=sku, name=sku)
    Barcode.objects.create(article=article, code=code, gtin=code.zfill(14))
    Price.objects.create(article=article, group=group, amount=Decimal(price), valid_from=date(2020, 1, 1))
    stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key="seed:" + sku, quantity=Decimal(3),
                                     sku=sku, location_code="S1")], origin=StockOrigin(kind="user", code="seed"))
print(token_issue(kind="register", subject="R1"))
"""


def test_till_client_replays_against_a_gunicorn_main_system(tmp_path):
    env = process_env(database=database_url("e2e_till"), redis=False)
    with started_server(env=env, name="main") as url:
        token = manage("shell", "-c", SEED, env=env).stdout.strip().splitlines()[-1]
        path = tmp_path / "shift.csv"
        path.write_text(
            "kind,sale,code,sku,quantity,price,discount,method,amount\n"
            f"line,A,{EAN13},,2,1.99,,card,\n"
            f"line,A,{UPCA},,1,0.89,,,\n"
            f"line,B,{EAN13},,2,1.99,,,\n"
        )

        first = manage(
            "till_replay",
            str(path),
            "--url",
            url,
            "--token",
            token,
            "--keep-going",
            "--timeout",
            "60",
            env=env,
            check=False,
        )
        second = manage(
            "till_replay",
            str(path),
            "--url",
            url,
            "--token",
            token,
            "--keep-going",
            "--timeout",
            "60",
            env=env,
            check=False,
        )
        scan = requests.get(f"{url}/api/v1/scan/{EAN13}/", headers={"Authorization": f"Token {token}"}, timeout=10)

    # Sale B wants 2 pens where 1 is left at a location refusing negative stock: refused whole.
    assert first.returncode == 1
    assert "FAILED sale B: 400 lines[0].quantity: would leave -1" in first.stderr
    assert "this location refuses negative stock" in first.stderr
    assert "1 sale(s) (0 replayed, 0 flagged), 1 failed" in first.stderr
    assert "1 sale(s) (1 replayed, 0 flagged), 1 failed" in second.stderr
    assert (scan.json()["on_hand"], scan.json()["available"]) == ("1.000", "1.000")
