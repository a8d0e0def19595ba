"""The OpenAPI document documents the error answers (posinv/api/schema.py),
read the way a vendor writing a client reads /api/schema/: which statuses an
operation can answer, with which body and headers, and that the API's real
error answers are the ones documented."""
from __future__ import annotations

import pytest
import schemathesis
from werkzeug.test import Client

from cabinets.services.provisioning import cabinet_create
from config.wsgi import application
from posinv.api.throttling import auth_failures_reset

pytestmark = pytest.mark.django_db

READINGS = "/api/v1/cabinets/{code}/readings/"
CUSTOMER = "/api/v1/customers/{customer_no}/"
ERRORS_REF = {"$ref": "#/components/schemas/ErrorsOut"}


@pytest.fixture
def document(db) -> dict:
    # Through the WSGI application like every request here: Django's test Client would
    # reconnect close_old_connections, which closes the test's connection (tests/conftest.py).
    response = Client(application).get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json


def _error_answers(document: dict, path: str, method: str) -> dict[str, dict]:
    responses = document["paths"][path][method]["responses"]
    return {status: answer for status, answer in responses.items() if status.startswith("4")}


def _body_schema(answer: dict) -> dict:
    assert list(answer["content"]) == ["application/json"]
    return answer["content"]["application/json"]["schema"]


def test_a_device_operation_documents_401_403_404_and_429_with_the_error_body(document):
    answers = _error_answers(document, READINGS, "post")

    assert sorted(answers) == ["400", "401", "403", "404", "415", "429"]
    assert {status: _body_schema(answer) for status, answer in answers.items()} == dict.fromkeys(answers, ERRORS_REF)
    assert answers["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert answers["429"]["headers"]["Retry-After"] == {
        "description": "Seconds until the current minute is over and tokens are looked at again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
    assert "another device" in answers["403"]["description"]
    assert document["paths"][READINGS]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadingsAnswer"
    }


def test_a_staff_operation_documents_401_403_404_and_429_and_no_bad_input_without_input(document):
    answers = _error_answers(document, CUSTOMER, "get")

    # no body and no query: nothing can be malformed, so no 400 and no 415
    assert sorted(answers) == ["401", "403", "404", "429"]
    assert answers["404"]["description"] == "Nothing exists under the identifier in the path."
    assert answers["429"]["description"].startswith("Too many wrong tokens from this client address")


def test_the_error_body_is_the_exception_handler_s_shape(document):
    schemas = document["components"]["schemas"]

    assert schemas["ErrorsOut"]["properties"]["errors"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/ProblemOut"}
    }
    assert schemas["ErrorsOut"]["required"] == ["errors"]
    assert set(schemas["ProblemOut"]["required"]) == {"reason", "code"}
    assert set(schemas["ProblemOut"]["properties"]) == {"field", "reason", "code"}


def test_only_answers_the_view_can_give_are_documented(document):
    webhook = _error_answers(document, "/api/v1/carts/{code}/webhook/", "post")
    stock_levels = _error_answers(document, "/api/v1/stock-levels/", "get")
    drafts = _error_answers(document, "/api/v1/purchase-orders/drafts/", "post")

    # signed, no token: no 401 and no failed-token 429; the view adds its signature's 403
    assert sorted(webhook) == ["400", "403", "404", "415"]
    assert webhook["403"]["description"].startswith("The signature does not verify")
    # query parameters (also limit/offset) but no path and no body
    assert sorted(stock_levels) == ["400", "401", "403", "429"]
    assert sorted(drafts) == ["401", "403", "429"]


def test_a_view_s_own_answers_are_kept_and_node_only_operations_document_their_404(document):
    sale = document["paths"]["/api/v1/sales/"]["post"]["responses"]
    entries = document["paths"]["/api/v1/registers/{code}/entries/"]["post"]["responses"]
    outbox = document["paths"]["/api/v1/sync/outbox/"]["get"]["responses"]

    assert sale["409"]["description"] == "The key was used for another sale."
    assert sale["401"]["description"] == "No or unknown token."  # retail's own words, not the default
    assert "429" in sale
    assert _body_schema(entries["409"]) == {"$ref": "#/components/schemas/EntryBatchOut"}
    assert outbox["404"]["description"] == "Not a register node: only a node (POSINV_NODE=register) serves this."


def test_rfid_reads_documents_the_404_of_an_unknown_location(document):
    assert "404" in document["paths"]["/api/v1/rfid/reads/"]["post"]["responses"]


def test_real_error_answers_are_the_documented_ones(document, settings):
    # given cabinets CAB1 and CAB2 (inactive), CAB1's token, and a low failed-token limit
    settings.POSINV_AUTH_FAILURES_PER_MINUTE = 2
    settings.REDIS_URL = ""  # count failures in this process: Redis keeps other runs' counts for the minute
    auth_failures_reset()
    _, own_token = cabinet_create(code="CAB1", location_code="CAB1-LOC", name="Cabinet 1")
    inactive, inactive_token = cabinet_create(code="CAB2", location_code="CAB2-LOC", name="Cabinet 2")
    inactive.active = False
    inactive.save(update_fields=["active"])
    operation = schemathesis.openapi.from_dict(document)[READINGS]["POST"]
    http = Client(application)

    def post(token: str | None, *, code: str = "CAB1", **body):
        headers = {"Authorization": f"Token {token}"} if token else {}
        return http.post(READINGS.format(code=code), headers=headers, **(body or {"json": {"readings": []}}))

    # when the API refuses in every documented way
    answers = {
        "a malformed body": post(own_token, json={"readings": "none"}),
        "a text body": post(own_token, data="readings", content_type="text/plain"),
        "another cabinet's URL": post(own_token, code="CAB9"),
        "an inactive cabinet": post(inactive_token, code="CAB2"),
        "no token": post(None),
        "a wrong token": post("wrong-1"),
        "a second wrong token": post("wrong-2"),
        "over the limit": post(own_token),
    }
    auth_failures_reset()

    # then each is a documented status with the documented body
    assert {what: answer.status_code for what, answer in answers.items()} == {
        "a malformed body": 400, "a text body": 415, "another cabinet's URL": 403, "an inactive cabinet": 404,
        "no token": 401, "a wrong token": 401, "a second wrong token": 401, "over the limit": 429,
    }
    documented = document["paths"][READINGS]["post"]["responses"]
    for answer in answers.values():
        assert str(answer.status_code) in documented
        operation.validate_response(answer)  # raises on a body or content type other than the documented
    assert answers["no token"].headers["WWW-Authenticate"] == "Token"
    assert answers["over the limit"].headers["Retry-After"].isdigit()
    [throttled] = answers["over the limit"].json["errors"]
    assert throttled["code"] == "throttled"
    wait = answers["over the limit"].headers["Retry-After"]
    assert throttled["reason"] in {f"Too many failed tokens from this address. Expected available in {wait} {unit}."
                                   for unit in ("second", "seconds")}
