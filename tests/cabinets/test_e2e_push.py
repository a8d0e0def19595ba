"""A cabinet provisioned from a script and pushing over real HTTP to a
gunicorn server (own database): create_cabinet prints the token,
import_trays reads the CSV, the push answers per reading."""
from __future__ import annotations

import pytest
import requests

from tests.support.processes import database_url, manage, process_env, started_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_scripted_cabinet_pushes_readings_over_http(tmp_path):
    env = process_env(database=database_url("cabpush"), redis=False)
    with started_server(env=env, workers=1) as url:
        manage("shell", "-c", (
            "from posinv.models import Article; "
            "Article.objects.create(sku='SCR-E', name='Screw', unit_weight_g='3.2')"
        ), env=env)
        created = manage("create_cabinet", "CABE", "--location", "CABE-LOC", env=env).stdout
        token = created.splitlines()[1].removeprefix("device token: ")
        trays = tmp_path / "trays.csv"
        trays.write_text("tray_id,sku,tare_g,threshold\nT-1,SCR-E,412.5,40\n", encoding="utf-8")
        imported = manage("import_trays", "CABE", str(trays), env=env).stdout
        bad = tmp_path / "bad.csv"
        bad.write_text("tray_id,sku,tare_g,threshold\nT-2,NOPE,1,1\n", encoding="utf-8")
        refused = manage("import_trays", "CABE", str(bad), env=env, check=False)

        push = lambda body, tok=token: requests.post(  # noqa: E731
            f"{url}/api/v1/cabinets/CABE/readings/", json=body, headers={"Authorization": f"Token {tok}"}, timeout=10
        )
        answer = push({"readings": [
            {"tray_id": "T-1", "weight_g": "732.5", "position": "B-2", "read_at": "2026-05-03T08:00:00Z"},
            {"tray_id": "T-9", "weight_g": "500", "read_at": "2026-05-03T08:00:00Z"},
        ]})
        malformed = push({"readings": [{"tray_id": "T-1", "weight_g": "x", "read_at": "2026-05-03T09:00:00Z"}]})
        wrong_token = push({"readings": []}, tok="nope")
        level = manage("shell", "-c", (
            "from posinv.models import StockLevel; "
            "print(StockLevel.objects.get(article__sku='SCR-E', location__code='CABE-LOC').on_hand)"
        ), env=env).stdout.strip().splitlines()[-1]

    assert imported == "cabinet CABE: 1 trays created, 0 updated\n"
    assert refused.returncode != 0
    assert "row 1 (line 2): sku: unknown article 'NOPE'" in refused.stderr
    assert answer.status_code == 200
    body = answer.json()
    assert (body["applied"], body["rejected"], body["posted"]) == (1, 1, 1)
    assert body["results"][0]["quantity"] == "100.000"  # (732.5 - 412.5) / 3.2
    assert body["results"][1]["code"] == "unknown_tray"
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["field"] == "readings[0].weight_g"
    assert wrong_token.status_code == 401
    assert level == "100.000"
