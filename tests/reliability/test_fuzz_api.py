"""API fuzzing: schemathesis generates requests for every operation of
/api/schema/ (valid and invalid bodies, parameters and headers) and sends
them in-process to the WSGI application, as a staff user, as a register, as
a cabinet and with a wrong token. No answer may be a 5xx, every documented
answer must match its schema and content type, and afterwards every
(article, location) still has on_hand equal to the sum of its moves.

Bounded: POSINV_FUZZ_EXAMPLES examples per operation and token (default 12),
which keeps the whole run around two minutes on 2 cores.
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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from config.wsgi import application
from posinv.models import StockMove
from posinv.selectors import ledger_drift

pytestmark = [pytest.mark.fuzz, pytest.mark.slow, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("POSINV_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _schema():
    # The same document /api/schema/ serves (drf-spectacular), loaded without a request.
    document = SchemaGenerator().get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(document)


def _fuzz(world, who: str) -> tuple[Counter, list[str]]:
    schema = _schema()
    headers = {"Authorization": f"Token {world.tokens[who]}" if who != "bad" else "Token wrong-token-000000000000"}
    statuses: Counter = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        @given(case=operation.as_strategy())
        @hsettings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                   phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck))
        def run(case):
            if who in {"R1", "CAB1"} and case.operation.path.startswith(("/api/v1/registers/", "/api/v1/cabinets/")):
                # A device's own URL, so its token gets past the scope check and the bodies are fuzzed.
                case.path_parameters["code"] = who
            response = case.call(app=application, headers=headers)
            statuses[response.status_code // 100 * 100] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception as exc:  # collect every operation's failure, report them together
                failures.append(f"{case.operation.label} -> {response.status_code}: {str(exc)[:600]}")

        run()  # tests/conftest.py keeps the test's connection open across in-process requests
    return statuses, failures


@pytest.mark.parametrize("who", ["staff", "R1", "CAB1", "bad"])
def test_fuzzing_every_operation_gives_no_5xx_schema_conform_answers_and_keeps_the_ledger(world, who, settings):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    # given the world's stock (moves and levels agree)
    assert list(ledger_drift()) == []
    # when every operation is fuzzed with this token
    statuses, failures = _fuzz(world, who)
    # then nothing failed, something was really answered, and the ledger still holds
    assert failures == []
    assert statuses[500] == 0
    assert sum(statuses.values()) >= EXAMPLES
    assert list(ledger_drift()) == []
    call_command("verify_ledger")  # the command exits non-zero (CommandError) on any drift
    print(f"fuzz {who}: {dict(statuses)}")
    if who == "bad":
        assert set(statuses) == {400}  # 401 everywhere; the signed webhook 400/403/404
        assert StockMove.objects.count() == 1  # a wrong token moved nothing
    else:
        assert statuses[200] > 0  # the token was accepted somewhere: not a run of 401s
