"""POST /api/v1/cabinets/{code}/readings/: per-reading outcomes, malformed
bodies refused whole, and device-token scoping."""
from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from cabinets.models import WeighingCabinet, WeightReading
from cabinets.services.provisioning import cabinet_create
from posinv.models import ApiToken, StockLevel, StockMove
from posinv.services.tokens import token_issue

pytestmark = pytest.mark.django_db
URL = "/api/v1/cabinets/CAB1/readings/"


def client_with(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def device(cabinet_and_token, tray):
    return client_with(cabinet_and_token[1])


def test_push_answers_each_reading_applied_duplicate_or_rejected(device, cabinet, screw):
    body = {"readings": [
        {"tray_id": "T-1", "weight_g": "222.4", "position": "A-03", "read_at": "2026-05-03T08:00:00Z"},
        {"tray_id": "T-1", "weight_g": "222.4", "position": "A-03", "read_at": "2026-05-03T10:00:00+02:00"},
        {"tray_id": "T-77", "weight_g": "500", "read_at": "2026-05-03T08:00:00Z"},
    ]}

    response = device.post(URL, body, format="json")

    assert response.status_code == 200
    move_id = StockMove.objects.get().pk
    assert response.json() == {
        "received": 3, "applied": 1, "duplicate": 1, "rejected": 1,
        "posted": 1, "unchanged": 0, "held": 0, "stale": 0,
        "results": [
            {"index": 0, "tray_id": "T-1", "read_at": "2026-05-03T08:00:00Z", "status": "applied",
             "outcome": "posted", "quantity": "12.000", "move_id": move_id, "code": "", "reason": "",
             "position_ignored": False},
            {"index": 1, "tray_id": "T-1", "read_at": "2026-05-03T08:00:00Z", "status": "duplicate",
             "outcome": "posted", "quantity": "12.000", "move_id": move_id, "code": "", "reason": "",
             "position_ignored": False},
            {"index": 2, "tray_id": "T-77", "read_at": "2026-05-03T08:00:00Z", "status": "rejected",
             "outcome": "rejected", "quantity": None, "move_id": None, "code": "unknown_tray",
             "reason": "unknown tray 'T-77' in cabinet CAB1", "position_ignored": False},
        ],
    }
    assert StockLevel.objects.get(article=screw, location=cabinet.location).on_hand == Decimal("12")
    cabinet.refresh_from_db()
    assert cabinet.last_reading_at is not None


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ([1, 2], "readings", "expected a JSON object with a 'readings' list"),
        ({"reading": []}, "readings", "required: a list of readings"),
        ({"readings": [{"tray_id": "T-1", "weight_g": "heavy", "read_at": "2026-05-03T08:00:00Z"}]},
         "readings[0].weight_g", "'heavy' is not a number"),
        ({"readings": [{"tray_id": "T-1", "weight_g": "200", "read_at": "2026-05-03T08:00:00"}]},
         "readings[0].read_at", "must include a time zone (e.g. 2026-05-03T10:00:00Z)"),
        ({"readings": [{"tray_id": "", "weight_g": "200", "read_at": "2026-05-03T08:00:00Z"}]},
         "readings[0].tray_id", "required: a non-empty string"),
        ({"readings": [{"tray_id": "T-1", "weight_g": "NaN", "read_at": "2026-05-03T08:00:00Z"}]},
         "readings[0].weight_g", "must be a finite number"),
        ({"readings": [{"tray_id": "T-1", "weight_g": "200", "read_at": "yesterday"}]},
         "readings[0].read_at", "required: an ISO 8601 date and time with its zone"),
        ({"readings": [{"tray_id": "T-1", "weight_g": "200", "read_at": "0001-01-01T03:00:00+05:00"}]},
         "readings[0].read_at", "must be between 1970-01-01 and 2199-12-31 (UTC)"),
    ],
)
def test_a_malformed_body_is_400_with_the_field_and_nothing_is_applied(device, body, field, reason):
    good = {"tray_id": "T-1", "weight_g": "222.4", "read_at": "2026-05-03T07:00:00Z"}
    if isinstance(body, dict) and "readings" in body:
        body = {"readings": [good, *body["readings"]]}
        field = field.replace("readings[0]", "readings[1]")

    response = device.post(URL, body, format="json")

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["field"], error["reason"]) == (field, reason)
    assert WeightReading.objects.count() == 0
    assert StockMove.objects.count() == 0


def test_a_zone_offset_beyond_postgresql_s_16_hours_is_read_in_utc_not_a_500(device, cabinet, screw):
    # Found by the API fuzzing: Python takes offsets up to 24 h, PostgreSQL refused to store it (500).
    body = {"readings": [{"tray_id": "T-1", "weight_g": "222.4", "read_at": "2026-05-03T20:07:49-21:33"}]}

    response = device.post(URL, body, format="json")

    assert response.status_code == 200
    assert response.json()["results"][0]["read_at"] == "2026-05-04T17:40:49Z"
    assert WeightReading.objects.get().read_at.isoformat() == "2026-05-04T17:40:49+00:00"
    assert StockLevel.objects.get(article=screw, location=cabinet.location).on_hand == Decimal("12")


def test_a_batch_over_the_limit_is_refused_whole(device):
    readings = [{"tray_id": "T-1", "weight_g": "200", "read_at": f"2026-05-03T08:00:{i % 60:02d}Z"}
                for i in range(5001)]

    response = device.post(URL, {"readings": readings}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["reason"] == "at most 5000 readings per request, got 5001"
    assert WeightReading.objects.count() == 0


def test_invalid_json_is_400(device):
    response = device.post(URL, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert WeightReading.objects.count() == 0


def test_without_a_token_the_answer_is_401(cabinet, tray):
    response = client_with(None).post(URL, {"readings": []}, format="json")

    assert response.status_code == 401
    assert response.json() == {"errors": [{"reason": "Authentication credentials were not provided.",
                                           "code": "not_authenticated"}]}


def test_an_unknown_token_is_401(cabinet, tray):
    response = client_with("not-a-token").post(URL, {"readings": []}, format="json")

    assert response.status_code == 401


def test_another_cabinets_token_is_403_and_applies_nothing(cabinet, tray):
    _, other_token = cabinet_create(code="CAB2", location_code="CAB2-LOC")
    body = {"readings": [{"tray_id": "T-1", "weight_g": "200", "read_at": "2026-05-03T08:00:00Z"}]}

    response = client_with(other_token).post(URL, body, format="json")

    assert response.status_code == 403
    assert response.json()["errors"][0]["reason"] == "This token belongs to another device."
    assert WeightReading.objects.count() == 0


def test_a_register_token_with_the_same_code_is_403(cabinet, tray):
    register_token = token_issue(kind=ApiToken.Kind.REGISTER, subject="CAB1")

    response = client_with(register_token).post(URL, {"readings": []}, format="json")

    assert response.status_code == 403
    assert response.json()["errors"][0]["reason"] == "A cabinet token is required."


def test_an_inactive_cabinet_is_404(device, cabinet):
    WeighingCabinet.objects.filter(pk=cabinet.pk).update(active=False)
    body = {"readings": [{"tray_id": "T-1", "weight_g": "200", "read_at": "2026-05-03T08:00:00Z"}]}

    response = device.post(URL, body, format="json")

    assert response.status_code == 404
    assert WeightReading.objects.count() == 0


def test_the_openapi_schema_documents_the_readings_push(staff_client):
    response = staff_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    operation = response.json()["paths"]["/api/v1/cabinets/{code}/readings/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/ReadingsInRequest")
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ReadingsAnswer"
    )


@pytest.mark.postgres  # SQLite splits bulk statements at its parameter limit
def test_a_push_costs_the_same_statements_for_one_reading_or_three_hundred(device, cabinet, screw):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cabinets.models import Tray

    Tray.objects.bulk_create(
        [Tray(cabinet=cabinet, tray_id=f"T-{i:03d}", article=screw, tare_g=Decimal("100")) for i in range(300)]
    )

    def statements(count: int, minute: int) -> int:
        body = {"readings": [
            {"tray_id": f"T-{i:03d}", "weight_g": str(200 + 10 * minute), "read_at": f"2026-05-03T08:{minute:02d}:00Z"}
            for i in range(count)
        ]}
        with CaptureQueriesContext(connection) as queries:
            assert device.post(URL, body, format="json").json()["posted"] == count
        return len(queries)

    statements(300, 0)  # every level exists from here on
    assert statements(1, 1) == statements(300, 2)
