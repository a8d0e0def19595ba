"""/healthz of a real gunicorn process whose database or Redis is down:
503 naming the failing part, while the process itself stays up."""
from __future__ import annotations

import pytest
import requests

from tests.support.processes import PYTHON, free_port, process_env, spawn, wait_until

pytestmark = [pytest.mark.e2e]


def serve(env: dict):
    port = free_port()
    child = spawn([PYTHON, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                   "--workers", "1"], env=env, name="healthz")
    return child, f"http://127.0.0.1:{port}"


def test_a_web_process_without_its_database_answers_503_database(tmp_path):
    missing = tmp_path / "no-such-folder" / "db.sqlite3"
    env = process_env(database=f"sqlite:///{missing}", redis=False,
                      REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    child, url = serve(env)
    try:
        # A Response is falsy when it is not 2xx: wrap it to wait for any answer.
        (answer,) = wait_until(lambda: (requests.get(f"{url}/healthz", timeout=5),), timeout=30,
                               message="gunicorn to answer")
    finally:
        child.stop()

    body = answer.json()
    assert answer.status_code == 503
    assert body["checks"] == {"database": "failed", "migrations": "unknown", "redis": "failed", "workers": "unknown"}
    assert body["errors"]["database"] == "unreachable: unable to open database file"
    assert body["errors"]["redis"].startswith("unreachable: ")
