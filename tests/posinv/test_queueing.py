"""The queueing helper: inline without Redis, real RQ and a real worker with it."""
from __future__ import annotations

import threading
import time

import django_rq
import pytest

from posinv.queueing import PENDING_PREFIX, enqueue, run_unique
from posinv.services.changes import changes_wake
from tests.support.processes import database_url, process_env, started_worker, wait_until


def test_inline_mode_runs_the_job_at_once_with_its_arguments(settings):
    settings.POSINV_JOBS_INLINE = True
    assert enqueue("builtins.dict", unique_key="k", a=1, b="x") == {"a": 1, "b": "x"}


@pytest.mark.redis
@pytest.mark.django_db
def test_unique_key_keeps_one_waiting_job(rq_mode):
    first = enqueue("os.getpid", queue="default", unique_key="only-one")
    second = enqueue("os.getpid", queue="default", unique_key="only-one")
    assert first is not None
    assert second is None
    assert django_rq.get_queue("default").count == 1
    assert rq_mode.exists(PENDING_PREFIX + "only-one")


@pytest.mark.redis
@pytest.mark.django_db
def test_worker_runs_job_with_its_arguments_and_frees_the_key(rq_mode):
    job = enqueue("builtins.dict", queue="default", unique_key="maker", a=2, b=3)
    env = process_env(database=database_url("queueing"))
    with started_worker(env=env, queues=("default",)):
        wait_until(lambda: job.refresh() or job.is_finished, timeout=30, message="job to finish")
    assert job.return_value() == {"a": 2, "b": 3}
    assert not rq_mode.exists(PENDING_PREFIX + "maker")


@pytest.mark.redis
@pytest.mark.django_db
def test_a_gathering_run_absorbs_wake_ups_until_it_frees_its_key(rq_mode):
    job = enqueue("builtins.dict", queue="default", unique_key="gather", gather_seconds=3, a=1)
    results = []
    # the worker's side of the job, run here in a thread
    worker = threading.Thread(target=lambda: results.append(run_unique(**job.kwargs)))
    worker.start()

    # wake-ups while it gathers join that run: nothing more is queued
    absorbed = [enqueue("builtins.dict", queue="default", unique_key="gather", gather_seconds=3, a=1) for _ in range(5)]
    worker.join()

    assert absorbed == [None] * 5
    assert results == [{"a": 1}]
    assert not rq_mode.exists(PENDING_PREFIX + "gather")
    # once the run has freed its key, the next wake-up queues the next run
    assert enqueue("builtins.dict", queue="default", unique_key="gather", gather_seconds=3, a=1) is not None


@pytest.mark.redis
@pytest.mark.django_db
def test_wake_ups_within_the_gathering_time_of_a_run_this_process_queued_skip_redis(rq_mode, settings):
    settings.POSINV_CHANGES_GATHER_SECONDS = 1.0
    queue = django_rq.get_queue("high")
    changes_wake()
    assert queue.count == 1
    # The run starts and frees its key; it reads its work a second later at the
    # earliest, so a commit now is served by it and needs no new run.
    queue.empty()
    rq_mode.delete(PENDING_PREFIX + "changes-dispatch")
    changes_wake()
    assert queue.count == 0
    assert not rq_mode.exists(PENDING_PREFIX + "changes-dispatch")
    # After the gathering time that run may have read its work: the next wake-up queues the next run.
    time.sleep(1.05)
    changes_wake()
    assert queue.count == 1
