"""Purchasing across real processes: a register pushes sales over HTTP to
a gunicorn server, a real rqworker dispatches the ledger's change outbox
(the core consumer opens the suggestion), purchasing drafts, sends and
receives the order through the API, and the worker closes the suggestion."""

from __future__ import annotations

import psycopg
import pytest
import requests

from tests.support.processes import database_url, manage, process_env, started_server, started_worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SETUP = """
from decimal import Decimal
from django.contrib.auth.models import Group, User
from backoffice.models import Supplier, SupplierArticle
from backoffice.services.reorder import reorder_level_set
from pos.models import CashRegister
from posinv.models import Article, Location
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_issue

store = Location.objects.create(code="S1", name="Store")
register = CashRegister.objects.create(code="R1", location=store)
apple = Article.objects.create(sku="APPLE", name="Apple")
supplier = Supplier.objects.create(code="FRUIT", name="Fruit")
SupplierArticle.objects.create(supplier=supplier, article=apple, supplier_sku="F-APPLE", pack_size=6, min_order_qty=12)
stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key="e2e-start", quantity=Decimal(30), article_id=apple.pk,
                 location_id=store.pk)], origin=StockOrigin(kind="user", code="e2e"))
reorder_level_set(article_id=apple.pk, location_id=store.pk, reorder_point=20, order_up_to=40)
for role in ("purchaser", "stock clerk"):
    user = User.objects.create_user(username=role.replace(" ", "_"), password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
print(token_issue(kind="register", subject="R1"))
"""


def suggestions(url: str) -> list[tuple]:
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(
            "SELECT state, quantity_on_hand, suggested_quantity FROM posinv_reordersuggestion ORDER BY id"
        ).fetchall()


def test_push_sales_suggest_draft_send_receive_and_the_worker_closes_the_suggestion(redis_conn):
    from decimal import Decimal

    db = database_url("bo_e2e")
    env = process_env(database=db)
    with started_server(env=env, workers=1) as url, started_worker(env=env):
        register_token = manage("shell", "-c", SETUP, env=env).stdout.strip().splitlines()[-1]
        purchaser = manage("create_api_token", "purchaser", env=env).stdout.strip()
        clerk = manage("create_api_token", "stock_clerk", env=env).stdout.strip()

        pushed = requests.post(
            f"{url}/api/v1/registers/R1/entries/",
            headers={"Authorization": f"Token {register_token}"},
            json={
                "entries": [
                    {
                        "entry_no": 1,
                        "table": "receipt",
                        "record_id": "receipt:B-1",
                        "record": {
                            "receipt_no": "B-1",
                            "process_no": None,
                            "created_at": "2026-05-04T10:00:00+00:00",
                            "customer_no": None,
                            "total": "23.00",
                            "currency": "EUR",
                        },
                    },
                    {
                        "entry_no": 2,
                        "table": "receipt_line",
                        "record_id": "receipt_line:B-1:1",
                        "record": {
                            "receipt_no": "B-1",
                            "line_no": 1,
                            "sku": "APPLE",
                            "barcode": "",
                            "quantity": "23",
                            "unit_price": "1.00",
                            "discount": "0.00",
                        },
                    },
                ]
            },
            timeout=30,
        )
        assert pushed.status_code == 200, pushed.text

        # The worker runs the outbox dispatch; the core consumer opens the suggestion.
        assert wait_until(lambda: suggestions(db), timeout=30, message="suggestion opened") == [
            ("open", Decimal("7.000"), Decimal("33.000"))
        ]

        as_purchaser = {"Authorization": f"Token {purchaser}"}
        drafted = requests.post(f"{url}/api/v1/purchase-orders/drafts/", headers=as_purchaser, timeout=30).json()
        order = drafted["orders"][0]
        assert (order["supplier"], order["state"], order["lines"]) == (
            "FRUIT",
            "draft",
            [{"line_no": 1, "sku": "APPLE", "quantity_ordered": "36.000", "quantity_received": "0.000"}],
        )
        number = order["number"]
        assert (
            requests.post(f"{url}/api/v1/purchase-orders/{number}/send/", headers=as_purchaser, timeout=30).json()[
                "state"
            ]
            == "sent"
        )

        receive = f"{url}/api/v1/purchase-orders/{number}/receipts/"
        body = {"delivery_note": "DN-77", "lines": [{"line_no": 1, "quantity": "36"}]}
        assert requests.post(receive, headers=as_purchaser, json=body, timeout=30).status_code == 403
        as_clerk = {"Authorization": f"Token {clerk}"}
        bad = requests.post(receive, headers=as_clerk, json={"delivery_note": "", "lines": []}, timeout=30)
        assert bad.status_code == 400
        assert {e["field"] for e in bad.json()["errors"]} == {"delivery_note", "lines"}
        first = requests.post(receive, headers=as_clerk, json=body, timeout=30).json()
        again = requests.post(receive, headers=as_clerk, json=body, timeout=30).json()
        assert (first["state"], first["duplicate"], again["duplicate"], again["move_ids"]) == (
            "received",
            False,
            True,
            first["move_ids"],
        )

        assert wait_until(lambda: suggestions(db)[0][0] == "closed", timeout=30, message="suggestion closed")
        with psycopg.connect(db.replace("postgres://", "postgresql://")) as conn:
            assert conn.execute("SELECT on_hand FROM posinv_stocklevel").fetchall() == [(Decimal("43.000"),)]
        manage("verify_ledger", env=env)
