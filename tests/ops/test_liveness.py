"""Dead work is seen and cleared: a job run whose process stopped sending
heartbeats, an RQ worker that went silent, a live worker that cannot reach
the database; and a wake-up during a Redis outage is one warning line.
In-process; the same with real processes killed and restarted is in
tests/reliability/test_fault_pull_worker.py, test_fault_postgres.py and
test_fault_redis.py."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from ops.selectors import queue_health_get
from posinv.heartbeat import heartbeat_beat_now
from posinv.models import JobRun, Lease
from posinv.services.runs import job_run, job_runs_abandon_dead
from tests.support.processes import free_port


@pytest.fixture
def inline(settings):
    settings.POSINV_JOBS_INLINE = True
    settings.POSINV_DEAD_AFTER_SECONDS = 30


def _running(*, process: str, heard_seconds_ago: float, name: str = "register_pull", subject: str = "R1"):
    run = JobRun.objects.create(name=name, subject=subject, process=process)
    JobRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=heard_seconds_ago))
    return run


@pytest.mark.django_db
def test_a_run_whose_process_went_silent_is_marked_failed_and_its_lease_freed(inline):
    dead = _running(process="host-a:101", heard_seconds_ago=45)
    alive = _running(process="host-b:202", heard_seconds_ago=3, subject="R2")
    Lease.objects.create(key="job:register_pull:R1", holder="host-a:101",
                         expires_at=timezone.now() + timedelta(hours=1))

    before = queue_health_get()
    abandoned = job_runs_abandon_dead()
    after = queue_health_get()

    assert (before.status, before.dead_runs) == ("amber", 1)
    assert "1 job run marked running without a heartbeat for over 30 s" in before.reason
    assert before.links["runs"] == "/admin/posinv/jobrun/?status__exact=running"
    assert [run.pk for run in abandoned] == [dead.pk]
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.finished_at is not None
    assert dead.error.startswith("Abandoned: the process running it (host-a:101) stopped answering")
    assert JobRun.objects.get(pk=alive.pk).status == "running"
    assert not Lease.objects.filter(key="job:register_pull:R1").exists()
    assert (after.status, after.dead_runs) == ("green", 0)
    assert job_runs_abandon_dead() == []  # twice is harmless


@pytest.mark.django_db
def test_a_run_in_progress_is_kept_alive_by_the_heartbeat(inline):
    with job_run("cart_send_qoh", "shop") as counts:
        assert counts == {}
        run = JobRun.objects.get(name="cart_send_qoh")
        assert run.process and run.heartbeat_at is not None
        JobRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=45))
        heartbeat_beat_now()
        run.refresh_from_db()
        assert timezone.now() - run.heartbeat_at < timedelta(seconds=5)
        assert job_runs_abandon_dead() == []
    run.refresh_from_db()
    assert run.status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_wake_ups_while_redis_is_down_log_one_warning_and_no_traceback(settings, caplog):
    from posinv import queueing
    from posinv.services.changes import changes_wake, changes_wake_forget

    settings.POSINV_JOBS_INLINE = False
    settings.POSINV_REDIS_RETRY_SECONDS = 5
    settings.RQ_QUEUES = {name: {"URL": f"redis://127.0.0.1:{free_port()}/0", "DEFAULT_TIMEOUT": 60}
                          for name in settings.RQ_QUEUES}
    queueing._clients.clear()
    queueing._wake_outage.update(since=None, retry_at=0.0, skipped=0, logged_at=0.0)
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(5):
                changes_wake_forget()
                changes_wake()  # would raise before: each sale's on_commit logged a traceback
        warnings = [r for r in caplog.records if r.name == "posinv.queueing"]
        assert [r.getMessage().split(" (")[0] for r in warnings] == [
            "Redis unreachable, wake-up posinv.jobs.changes_dispatch_job not sent"]
        assert warnings[0].exc_info is None
        assert queueing._wake_outage["skipped"] == 4  # not even tried while the retry waits
    finally:
        queueing._clients.clear()
        queueing._wake_outage.update(since=None, retry_at=0.0, skipped=0, logged_at=0.0)


@pytest.mark.redis
@pytest.mark.django_db
def test_healthz_and_the_dashboard_tell_a_dead_worker_and_one_without_database(client, settings, rq_mode):
    import django_rq

    from posinv.worker import BEAT_FIELD, DATABASE_FIELD, PosinvWorker, rq_dead_workers_clear

    settings.POSINV_DEAD_AFTER_SECONDS = 30
    connection = django_rq.get_connection("default")
    queue = django_rq.get_queue("default")

    def registered(name: str, *, heard_seconds_ago: float, database: str) -> PosinvWorker:
        worker = PosinvWorker([queue], connection=connection, name=name)
        worker.register_birth()
        beat = timezone.now() - timedelta(seconds=heard_seconds_ago)
        connection.hset(worker.key, mapping={BEAT_FIELD: beat.isoformat(), DATABASE_FIELD: database})
        return worker

    # given a live worker that cannot reach the database
    registered("cut-off", heard_seconds_ago=1, database="failed: OperationalError: connection refused")
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["workers"] == "failed"
    error = answer.json()["errors"]["workers"]
    assert error.startswith("worker cut-off on ")
    assert "cannot reach the database: failed: OperationalError: connection refused" in error
    assert client.get("/healthz?scope=web").status_code == 200  # the proxy keeps the web in rotation
    queues = queue_health_get()
    assert queues.status == "red" and "cannot reach the database" in queues.reason

    # given instead a worker killed with SIGKILL 45 s ago, next to a healthy one
    connection.flushdb()
    registered("killed", heard_seconds_ago=45, database="ok")
    registered("healthy", heard_seconds_ago=1, database="ok")
    queues = queue_health_get()
    assert (queues.workers, queues.dead_workers, queues.status) == (1, 1, "amber")
    assert "worker killed on " in queues.reason and "stopped answering 45 s ago (killed or hung)" in queues.reason
    assert {w["name"]: w["state"] for w in queues.worker_list}["killed"] == "dead"
    assert client.get("/healthz").json()["checks"]["workers"] == "ok"

    # when the dead work is cleared, only the healthy worker is left and the section is green
    assert rq_dead_workers_clear(connection=connection) == ["killed"]
    queues = queue_health_get()
    assert (queues.workers, queues.dead_workers, queues.status) == (1, 0, "green")


@pytest.mark.django_db
def test_a_run_from_before_heartbeats_is_abandoned_only_after_an_hour_and_keeps_its_lease(inline):
    """During an upgrade, workers still on the old code record runs without
    heartbeats: those are not taken for dead while they may still run."""
    recent = JobRun.objects.create(name="store_stock", subject="s1", process="old:1")
    old = JobRun.objects.create(name="store_stock", subject="s2", process="old:1")
    JobRun.objects.filter(pk=recent.pk).update(started_at=timezone.now() - timedelta(minutes=10))
    JobRun.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(hours=2))
    Lease.objects.create(key="job:store_stock:s2", holder="old:1", expires_at=timezone.now() + timedelta(hours=1))

    assert [run.pk for run in job_runs_abandon_dead()] == [old.pk]
    assert JobRun.objects.get(pk=recent.pk).status == "running"
    assert Lease.objects.filter(key="job:store_stock:s2").exists()
