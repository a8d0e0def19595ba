"""The register node's side of "every channel keeps going", against a main
system over real HTTP (tests/pos/fake_main.py): a batch refused whole for
one entry does not stop the rest, the refused entry is kept failed and
shown, a main system restored from a backup gets its lost entries back
without a new sale, and push runs are recorded failed when the main system
is unreachable or refuses."""
from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ops.selectors import register_health_list, register_sync_check
from pos.jobs import register_push_job
from pos.models import SyncEntry
from pos.services.node import outbox_retry_failed, register_push
from posinv.models import JobRun
from tests.pos.fake_main import fake_main

pytestmark = pytest.mark.django_db
TOKEN = "node-token-for-tests"


@pytest.fixture
def main(settings):
    with fake_main(token=TOKEN) as main:
        settings.POSINV_NODE = "register"
        settings.POSINV_REGISTER_CODE = "R1"
        settings.POSINV_REGISTER_TOKEN = TOKEN
        settings.MAIN_URL = main.url
        yield main


@pytest.fixture
def till(main):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TOKEN}")
    return client


def sell(till, count: int) -> list[list[int]]:
    """`count` sales; the entry nos. each wrote."""
    numbers = []
    for n in range(1, count + 1):
        answer = till.post("/api/v1/till/receipts/", {
            "receipt_no": f"R1-{n:06d}", "created_at": "2026-03-02T09:00:00+01:00", "process_no": "P-1",
            "lines": [{"line_no": 1, "sku": "A-1", "quantity": "2", "unit_price": "1.20"}],
            "payments": [{"line_no": 1, "method": "cash", "amount": "2.40"}],
        }, format="json")
        assert answer.status_code == 201, answer.content
        numbers.append(answer.json()["entry_nos"])
    return numbers


def outbox(state: str) -> list[int]:
    return list(SyncEntry.objects.filter(direction="out", state=state).order_by("entry_no")
                .values_list("entry_no", flat=True))


def test_a_batch_refused_whole_without_naming_the_entry_is_searched_one_by_one_and_the_rest_goes_on(main, till):
    # An older main system answers 400 for the whole batch because of one
    # record, without saying which: the node no longer loops on the batch.
    numbers = sell(till, 4)
    everything = outbox("pending")
    poison = numbers[1][0]  # the second sale's receipt
    main.poison, main.name_the_entry = {poison}, False

    register_push_job()

    run = JobRun.objects.get(name="register_push")
    assert run.status == "failed"  # not "succeeded" while the main system refuses
    assert "the main system refused 1 entries whole" in run.error
    assert outbox("failed") == [poison]
    refused = SyncEntry.objects.get(direction="out", entry_no=poison)
    assert refused.last_error.startswith("HTTP 400:")
    register_push()  # the next run sends what still waits, and stops
    assert sorted(main.received) == [no for no in everything if no != poison]
    assert main.posts < 15

    # The node's health and admin say so, with a link to the entry.
    (health,) = register_health_list(now=timezone.now())
    assert (health.status, health.failed) == ("red", 1)
    assert health.reason.startswith("1 entries refused by the main system, kept here")
    check = register_sync_check()
    assert check["status"] == "red" and "register R1: 1 entries refused" in check["reason"]
    assert "direction__exact=out" in check["link"] and "state__exact=failed" in check["link"]

    # Fixed on the main system: a person retries, everything arrives, all green.
    main.poison = set()
    assert outbox_retry_failed(register_id=refused.register_id) == 1
    counts = register_push()
    assert counts["refused"] == 0
    assert sorted(main.received) == everything
    assert outbox("pending") == outbox("failed") == []
    (health,) = register_health_list(now=timezone.now())
    assert (health.status, health.reason) == ("green", "in sync")


def test_a_batch_refused_whole_naming_its_entry_costs_one_more_call(main, till):
    numbers = sell(till, 3)
    poison = numbers[2][0]
    main.poison = {poison}

    counts = register_push()

    assert (counts["refused"], main.posts) == (1, 2)  # refused, then the others
    assert outbox("failed") == [poison]
    assert sorted(main.received) == [no for no in range(1, numbers[-1][-1] + 1) if no != poison]


def test_a_main_restored_from_a_backup_gets_its_lost_entries_back_without_a_new_sale(main, till):
    numbers = sell(till, 5)
    everything = outbox("pending")
    register_push()
    assert sorted(main.received) == everything and outbox("pending") == []
    kept = numbers[1][-1]
    main.restore(through=kept)  # the backup held the first two sales only
    posts = main.posts

    counts = register_push()  # the till is closed: no sale since

    assert sorted(main.received) == everything
    assert counts["sent"] == len(everything) - kept
    assert outbox("pending") == []
    assert register_push()["calls"] == 0  # and nothing is sent again after that
    assert main.posts == posts + 1


def test_a_push_run_while_the_main_system_is_down_is_recorded_failed(till, settings):
    sell(till, 1)
    settings.MAIN_URL = "http://127.0.0.1:9"  # nothing listens there

    register_push_job()

    run = JobRun.objects.get(name="register_push")
    assert run.status == "failed"
    assert run.error.startswith("the main system is unreachable") and "unreachable" in run.counts
    assert len(outbox("pending")) == 4  # the process, the receipt, its line and payment


def test_a_main_that_refuses_every_batch_without_naming_an_entry_fails_none_of_them(main, till):
    # A proxy or a broken main system answering 400 to everything is the
    # channel's fault, not an entry's: nothing is kept failed, the node backs off.
    sell(till, 3)
    main.poison, main.name_the_entry = set(outbox("pending")), False

    register_push_job()

    run = JobRun.objects.get(name="register_push")
    assert run.status == "failed" and "every batch refused: HTTP 400" in run.error
    assert outbox("failed") == [] and len(outbox("pending")) == 10
    register = SyncEntry.objects.first().register
    assert register.failures_in_row == 1 and register.retry_after > timezone.now()
    assert main.posts == 4  # the batch, then three entries one by one


def test_an_idle_node_turns_green_again_once_the_main_system_answers(main, till, settings):
    sell(till, 1)
    register_push()
    settings.MAIN_URL = "http://127.0.0.1:9"
    register_push_job()  # nothing to send, but the main system is down: said so
    (health,) = register_health_list(now=timezone.now())
    assert health.status == "red" and health.reason.startswith("last transfer failed: GET settings")

    settings.MAIN_URL = main.url
    register_push()  # still nothing to send; the main system answers

    (health,) = register_health_list(now=timezone.now())
    assert (health.status, health.reason) == ("green", "in sync")
