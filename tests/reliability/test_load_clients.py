"""The HTTP load clients every load figure is measured with
(tests/support/loadrun.py: run_clients, percentile, ClientRun.summary),
against a real HTTP server in this process that answers as scripted."""
from __future__ import annotations

import json

import pytest

from tests.fakes.cartbase import FakeServer, Reply
from tests.support.loadrun import LoadClient, Outcome, Request, percentile, run_clients
from tests.support.processes import free_port


class ScriptedServer(FakeServer):
    """Answers each path with the statuses queued for it (200 once they run out) and keeps every request's body."""

    def __init__(self, script: dict[str, list[int]] | None = None):
        super().__init__()
        self.script = {path: list(statuses) for path, statuses in (script or {}).items()}
        self.bodies: list[tuple[str, dict]] = []

    def handle(self, request) -> Reply:
        self.bodies.append((request.path, request.json()))
        statuses = self.script.get(request.path)
        status = statuses.pop(0) if statuses else 200
        return Reply(status, {"seen": len(self.bodies)})


def numbered(prefix: str, count: int | None, **options) -> LoadClient:
    """A client posting {"n": n} to /<prefix>/<n>/, `count` requests (None: until the run's deadline)."""

    def request(n: int) -> Request | None:
        if count is not None and n >= count:
            return None
        return Request.post_json(f"/{prefix}/{n}/", {"n": n}, {"Authorization": f"Token {prefix}"})

    return LoadClient(request=request, **options)


def test_the_nearest_rank_percentile_is_a_value_of_the_sample():
    values = [float(v) for v in range(10, 0, -1)]

    assert percentile(values, 0.5) == 5.0
    assert percentile(values, 0.9) == 9.0
    assert percentile(values, 0.99) == 10.0
    assert percentile(values, 0.01) == 1.0
    assert percentile([float(v) for v in range(1, 101)], 0.07) == 7.0
    assert percentile([], 0.99) == 0.0


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_a_percentile_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match="share"):
        percentile([1.0], share)


def test_each_client_sends_its_requests_in_order_until_it_has_no_more():
    with ScriptedServer() as server:
        run = run_clients([numbered("a", 3), numbered("b", 2)], url=server.url)

    assert sorted(server.bodies, key=lambda seen: seen[0]) == [
        ("/a/0/", {"n": 0}), ("/a/1/", {"n": 1}), ("/a/2/", {"n": 2}), ("/b/0/", {"n": 0}), ("/b/1/", {"n": 1})]
    assert sorted((o.client, o.n, o.status) for o in run.outcomes) == [
        (0, 0, 200), (0, 1, 200), (0, 2, 200), (1, 0, 200), (1, 1, 200)]
    summary = run.summary(accept=(200,))
    assert (summary.accepted, summary.errors, len(summary.latencies)) == (5, {}, 5)
    assert run.summary(accept=(200,), clients=(1,)).accepted == 2


def test_a_refused_request_is_sent_again_unchanged_until_accepted_and_every_attempt_is_counted():
    with ScriptedServer({"/a/0/": [503, 409, 201]}) as server:
        run = run_clients([numbered("a", 2, accept=(201, 200), attempts=5, retry_pause=0)], url=server.url)

    assert server.bodies == [("/a/0/", {"n": 0})] * 3 + [("/a/1/", {"n": 1})]
    assert [(o.n, o.status) for o in run.outcomes] == [(0, 503), (0, 409), (0, 201), (1, 200)]
    summary = run.summary(accept=(201, 200))
    assert (summary.accepted, summary.errors) == (2, {"503": 1, "409": 1})


def test_a_client_gives_up_a_request_after_its_attempts_and_goes_on_with_the_next():
    with ScriptedServer({"/a/0/": [500, 500]}) as server:
        run = run_clients([numbered("a", 2, accept=(200,), attempts=2, retry_pause=0)], url=server.url)

    assert [(o.n, o.status) for o in run.outcomes] == [(0, 500), (0, 500), (1, 200)]
    assert run.summary(accept=(200,)).errors == {"500": 2}


def test_an_attempt_without_an_answer_has_status_zero_and_is_counted_by_its_exception():
    nobody = f"http://127.0.0.1:{free_port()}"

    run = run_clients([numbered("a", 2, attempts=2, retry_pause=0)], url=nobody, timeout=5)

    assert [(o.status, o.error) for o in run.outcomes] == [(0, "ConnectionRefusedError")] * 4
    summary = run.summary()
    assert (summary.accepted, summary.errors, summary.rate) == (0, {"ConnectionRefusedError": 4}, 0.0)


def test_answered_sees_every_answer_body_and_its_exception_is_raised_once_every_client_ended():
    seen: list[tuple[int, int, dict]] = []

    def answered(outcome: Outcome, body: bytes) -> None:
        seen.append((outcome.n, outcome.status, json.loads(body)))
        if outcome.status != 200:
            raise SystemExit(f"a: HTTP {outcome.status}")

    with ScriptedServer({"/a/1/": [409]}) as server:
        with pytest.raises(SystemExit, match="a: HTTP 409"):
            run_clients([numbered("a", 5, answered=answered), numbered("b", 4)], url=server.url)

    assert [(n, status) for n, status, _ in seen] == [(0, 200), (1, 409)]
    assert all("seen" in body for _, _, body in seen)
    # client a stopped at its refused request; client b went on to the end
    assert sorted(path for path, _ in server.bodies) == ["/a/0/", "/a/1/", "/b/0/", "/b/1/", "/b/2/", "/b/3/"]


def test_a_deadline_stops_clients_that_would_go_on_for_ever():
    with ScriptedServer() as server:
        none_at_all = run_clients([numbered("a", None)], url=server.url, seconds=0)
        some = run_clients([numbered("b", None, every=0.2)], url=server.url, seconds=1)

    assert none_at_all.outcomes == []
    assert some.outcomes and [o.n for o in some.outcomes] == list(range(len(some.outcomes)))


def test_clients_spread_over_processes_report_every_attempt_with_their_own_index():
    clients = [numbered(name, 3) for name in ("a", "b", "c")]

    with ScriptedServer({"/c/2/": [503, 200]}) as server:
        run = run_clients(clients, url=server.url, processes=2)

    assert sorted((o.client, o.n, o.status) for o in run.outcomes) == [
        (0, 0, 200), (0, 1, 200), (0, 2, 200), (1, 0, 200), (1, 1, 200), (1, 2, 200),
        (2, 0, 200), (2, 1, 200), (2, 2, 503)]
    assert len(server.bodies) == 9


def test_a_failure_in_a_client_process_is_raised_in_the_caller():
    def broken(n: int) -> Request:
        raise KeyError("no such till")

    with ScriptedServer() as server:
        with pytest.raises(RuntimeError, match="no such till"):
            run_clients([LoadClient(request=broken), numbered("a", 1)], url=server.url, processes=2)


@pytest.mark.parametrize(("clients", "url", "processes", "reason"), [
    ([], "http://127.0.0.1:8000", 1, "at least one client"),
    ([LoadClient(request=lambda n: None)], "https://127.0.0.1:8000", 1, "http://host:port"),
    ([LoadClient(request=lambda n: None)], "http://127.0.0.1", 1, "http://host:port"),
    ([LoadClient(request=lambda n: None)], "http://127.0.0.1:8000", 0, "processes"),
])
def test_a_run_that_cannot_be_made_is_refused_with_the_reason(clients, url, processes, reason):
    with pytest.raises(ValueError, match=reason):
        run_clients(clients, url=url, processes=processes)
