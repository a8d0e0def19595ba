"""The process helpers themselves: a real server answers and a real worker runs a job."""
from __future__ import annotations

import pytest
import requests

from tests.support.processes import database_url, process_env, started_server, started_worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_server_serves_the_api_schema_on_its_own_database():
    env = process_env(database=database_url("support"))
    with started_server(env=env, workers=1) as url:
        answer = requests.get(f"{url}/api/schema/", timeout=10)
    assert answer.status_code == 200
    assert "openapi" in answer.text


@pytest.mark.redis
def test_worker_runs_an_enqueued_job(redis_conn):
    import django_rq

    env = process_env(database=database_url("worker"))
    queue = django_rq.get_queue("default")
    job = queue.enqueue("posinv.queueing.run_path", kwargs={"func_path": "os.getpid", "kwargs": {}})
    with started_worker(env=env, queues=("default",)) as worker:
        pid = wait_until(lambda: job.refresh() or job.return_value(), timeout=30, message="job result")
    assert pid == worker.pid
