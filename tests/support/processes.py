"""Real processes for end-to-end tests: posinv servers (gunicorn) and
`rqworker`s, each with its own database, on free ports of 127.0.0.1.

    with started_server(env=node_env(label="main")) as main_url: ...
    with started_worker(env=...) as worker: worker.kill_hard()

The child processes use the production settings (config.settings), so what
runs is what ships. On PostgreSQL every database is named after the test
database and a label (dropped afterwards); on SQLite it is a file in a
temporary folder."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
LOG_DIR = Path(os.environ.get("POSINV_TEST_LOG_DIR", tempfile.gettempdir())) / "posinv-test-logs"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float = 30, interval: float = 0.1,
               message: str | Callable[[], str] = ""):
    """Poll `predicate` until it returns something truthy; return that, or fail after `timeout` seconds
    (`message` may be a callable, to say what was last seen)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # a server still starting refuses connections
            last_error = exc
        time.sleep(interval)
    if callable(message):
        message = message()
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}; last error: {last_error}")


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def database_url(label: str) -> str:
    """DATABASE_URL for a fresh database of this test run named by `label`."""
    if connection.vendor == "postgresql":
        base = settings.DATABASES["default"]
        name = f"{base['NAME']}_{label}_{_worker_suffix()}".lower()[:60]
        user = base.get("USER") or "postgres"
        password = f":{base['PASSWORD']}" if base.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{base.get('HOST') or '127.0.0.1'}:{base.get('PORT') or 5432}/{name}"
    folder = Path(tempfile.mkdtemp(prefix=f"posinv-{label}-"))
    return f"sqlite:///{folder / 'db.sqlite3'}"


def _admin_conninfo(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def create_database(url: str) -> None:
    """Create the PostgreSQL database of `url` afresh (SQLite needs nothing)."""
    if not url.startswith("postgres"):
        return
    import psycopg

    admin, name = _admin_conninfo(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    admin, name = _admin_conninfo(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def process_env(*, database: str, redis: bool = True, **extra: str) -> dict[str, str]:
    """Environment for a child posinv process on `database` (a DATABASE_URL).
    With `redis` and a Redis configured, jobs go to the test Redis database."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "posinv-e2e-key",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database,
        "PYTHONUNBUFFERED": "1",
        "POSINV_VAR_DIR": tempfile.mkdtemp(prefix="posinv-var-"),
    }
    if redis and settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    if os.environ.get("POSINV_SECRET_KEY_ENCRYPTION"):
        # The test process's key (tests/conftest.py), so stored credentials open in the child.
        env["POSINV_SECRET_KEY_ENCRYPTION"] = os.environ["POSINV_SECRET_KEY_ENCRYPTION"]
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run `manage.py ARGS` in a child process with `env`; fail with its output."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


class Child:
    """A started child process with its log file."""

    def __init__(self, popen: subprocess.Popen, log_path: Path, name: str):
        self.popen = popen
        self.log_path = log_path
        self.name = name

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def kill_hard(self) -> None:
        """SIGKILL the whole process group: no cleanup, as in a crash."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if not self.alive():
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_hard()


def spawn(args: list[str], *, env: dict[str, str], name: str) -> Child:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    popen = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return Child(popen, log_path, name)


@contextmanager
def started_server(
    *, env: dict[str, str], migrate: bool = True, workers: int = 2, name: str = "server", port: int | None = None
) -> Iterator[str]:
    """Migrate the database of `env` and serve posinv with gunicorn; yields the base URL."""
    if migrate:
        create_database(env["DATABASE_URL"])
        manage("migrate", "--noinput", env=env)
    port = port or free_port()
    child = spawn(
        [
            PYTHON, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120",
        ],
        env=env,
        name=name,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: requests.get(f"{url}/api/schema/", timeout=2).status_code in {200, 401, 403}
            or not child.alive(),
            timeout=60,
            message=f"{name} to answer",
        )
        if not child.alive():
            raise AssertionError(f"{name} died on start:\n{child.log()}")
        yield url
    finally:
        child.stop()
        if migrate:
            drop_database(env["DATABASE_URL"])


@contextmanager
def started_worker(
    *, env: dict[str, str], queues: tuple[str, ...] = ("high", "default", "low"), simple: bool = True,
    name: str = "rqworker",
) -> Iterator[Child]:
    """A real worker process on the queues: `run_worker`, the Procfile's
    (posinv.worker.PosinvWorker, no fork per job); `simple=False` runs
    django-rq's plain `rqworker` with RQ's forking Worker instead."""
    if "REDIS_URL" not in env:
        raise AssertionError("a worker needs REDIS_URL in its environment")
    if simple:
        args = [PYTHON, "manage.py", "run_worker", *queues]
    else:
        args = [PYTHON, "manage.py", "rqworker", *queues, "--worker-class", "rq.worker.Worker"]
    child = spawn(args, env=env, name=name)
    try:
        time.sleep(0.3)
        if not child.alive():
            raise AssertionError(f"{name} died on start:\n{child.log()}")
        yield child
    finally:
        child.stop()


@contextmanager
def started_command(*args: str, env: dict[str, str], name: str = "command") -> Iterator[Child]:
    """A long-running management command (e.g. run_scheduler) as a child process."""
    child = spawn([PYTHON, "manage.py", *args], env=env, name=name)
    try:
        yield child
    finally:
        child.stop()
