"""API fuzzing: schemathesis generates requests for every operation of
/api/schema/, once with data that fits the schema and once with data that
does not (bodies, parameters and headers), and sends them in-process to the
WSGI application, as a staff user, as a register, as a cabinet and with a
wrong token. Every answer must be documented: no 5xx, a documented status
(posinv/api/schema.py documents the error answers), the documented body,
content type and headers; invalid data must be refused with a 4xx. Afterwards
every (article, location) still has on_hand equal to the sum of its moves.

Left out: `positive_data_acceptance`, because the schema cannot say that a SKU
or a location must exist, so valid-looking data is rightly refused with 400
by the services; `ignored_auth`, because the wrong-token run shows the 401s
itself; the coverage and stateful checks, which need schemathesis' own runner.

Bounded: POSINV_FUZZ_EXAMPLES examples per operation, mode and token (default
12): about a minute for the four runs on 2 shared cores (docs/reliability.md).
Select with `pytest -m fuzz`."""
from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from posinv.models import StockMove
from posinv.selectors import ledger_drift

pytestmark = [pytest.mark.fuzz, pytest.mark.slow, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("POSINV_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance,
          response_headers_conformance]
EXTRA = {GenerationMode.POSITIVE: [], GenerationMode.NEGATIVE: [negative_data_rejection]}
def _schema():
    # The same document /api/schema/ serves (drf-spectacular), loaded without a request.
    document = SchemaGenerator().get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(document)


def _fuzz(world, who: str) -> tuple[Counter, list[str], list[str]]:
    """Every operation, with valid and with invalid data. Returns the answers
    by status, the failures, and the operations that have nothing to make invalid."""
    schema = _schema()
    headers = {"Authorization": f"Token {world.tokens[who]}" if who != "bad" else "Token wrong-token-000000000000"}
    statuses: Counter = Counter()
    failures: list[str] = []
    not_negated: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        for mode in GenerationMode:
            try:
                _fuzz_operation(operation, mode, who=who, headers=headers, statuses=statuses, failures=failures)
            except Unsatisfiable:
                # No body and no query, at most a path string: nothing can be sent that is invalid on the wire.
                assert mode is GenerationMode.NEGATIVE
                assert not operation.body and not [p for p in operation.iter_parameters() if p.location == "query"]
                not_negated.append(operation.label)
    return statuses, failures, not_negated


def _fuzz_operation(operation, mode: GenerationMode, *, who: str, headers: dict, statuses: Counter,
                    failures: list[str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @hsettings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
               phases=[Phase.explicit, Phase.generate],
               suppress_health_check=list(HealthCheck))
    def run(case):
        if who in {"R1", "CAB1"} and case.operation.path.startswith(("/api/v1/registers/", "/api/v1/cabinets/")):
            # A device's own URL, so its token gets past the scope check and the bodies are fuzzed.
            case.path_parameters["code"] = who
        response = case.call(app=application, headers=headers)
        statuses[response.status_code] += 1
        checks = CHECKS + EXTRA[mode]
        if (case.media_type and case.media_type != "application/json") or _has_an_empty_query_value(case):
            # Forms and query strings have no types, so an "invalid" value can read as a valid one: DRF
            # reads an empty value (`?below=`, `read_at=`) as not given, or as null where null is allowed.
            checks = [check for check in checks if check is not negative_data_rejection]
        try:
            case.validate_response(response, headers=headers, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup; collect them all
            failures.append(f"{mode} {case.operation.label} -> {response.status_code}: {str(exc)[:600]}")

    run()  # tests/conftest.py keeps the test's connection open across in-process requests


def _has_an_empty_query_value(case) -> bool:
    values = [v for value in (case.query or {}).values() for v in (value if isinstance(value, list) else [value])]
    return "" in values


@pytest.mark.parametrize("who", ["staff", "R1", "CAB1", "bad"])
def test_fuzzing_every_operation_gives_no_5xx_schema_conform_answers_and_keeps_the_ledger(world, who, settings):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    # given the world's stock (moves and levels agree)
    assert list(ledger_drift()) == []
    # when every operation is fuzzed with this token
    statuses, failures, not_negated = _fuzz(world, who)
    # then nothing failed, something was really answered, and the ledger still holds
    assert failures == [], "\n\n".join(failures)
    assert not [status for status in statuses if isinstance(status, int) and status >= 500]
    assert sum(statuses.values()) >= EXAMPLES
    assert list(ledger_drift()) == []
    call_command("verify_ledger")  # the command exits non-zero (CommandError) on any drift
    print(f"fuzz {who}: {dict(sorted(statuses.items(), key=str))}; not negated: {not_negated}")
    if who == "bad":
        assert set(statuses) <= {400, 401, 403, 404}
        assert statuses[401] > 0  # 401 everywhere but node-only operations and the signed webhook (404)
        assert StockMove.objects.count() == 1  # a wrong token moved nothing
    else:
        assert sum(count for status, count in statuses.items() if str(status).startswith("2")) > 0  # not all 401s


def test_a_transfer_receipt_with_a_null_line_is_refused_with_400(world):
    client = world.client("staff")
    client.raise_request_exception = False

    response = client.post("/api/v1/transfers/TO-1/receive/", {"lines": [None]}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "lines[0]"
    assert StockMove.objects.count() == 1
