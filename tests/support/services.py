"""Private PostgreSQL and Redis instances for fault tests, so a test can
stop or restart them without touching the shared services on 5432/6379.

    with private_postgres() as pg:       # initdb + pg_ctl on a free port, fsync off
        url = pg.database_url("posinv_h_main")
        pg.restart()                     # or pg.stop() / pg.start()
    with private_redis() as redis:       # redis-server child, no persistence
        redis.stop(); redis.start()      # same port again

Both are removed afterwards, even when the test fails. initdb refuses to
run as root, so as root (CI) the cluster is made and run as the `postgres`
OS user in a temporary folder that user owns."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, spawn, wait_until

PG_BIN_DIRS = ["/usr/local/bin", "/usr/lib/postgresql/15/bin"]


def _pg_tool(name: str) -> str:
    for folder in PG_BIN_DIRS:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        raise AssertionError(f"{name} not found (looked in {PG_BIN_DIRS} and PATH)")
    return found


def _as_postgres_user(args: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the postgres OS user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:`port` (trust auth)."""

    def __init__(self, folder: Path, port: int, *, durable_commits: bool = False):
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.log = folder / "postgres.log"
        self.durable_commits = durable_commits

    def database_url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(_as_postgres_user([_pg_tool("pg_ctl"), "-D", str(self.data), *args]),
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"pg_ctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n"
                                 f"{self.log.read_text(errors='replace')[-2000:] if self.log.exists() else ''}")
        return result

    def start(self) -> None:
        # synchronous_commit=off answers a commit before its WAL is written, so an
        # immediate stop loses the last ~0.2 s of acknowledged commits; a test that
        # crashes the server under load and counts every acknowledged write needs it on
        # (fsync may stay off: the operating system keeps what PostgreSQL wrote).
        commits = "on" if self.durable_commits else "off"
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -F "
                   f"-c full_page_writes=off -c synchronous_commit={commits} -c max_connections=100")
        self._ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; `immediate` is a crash as far as clients can tell."""
        self._ctl("stop", "-w", "-m", mode, check=False)

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return self._ctl("status", check=False).returncode == 0

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.database_url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)


@contextmanager
def private_postgres(*, durable_commits: bool = False) -> Iterator[PrivatePostgres]:
    """A fresh cluster, started; stopped and deleted afterwards. `durable_commits`:
    no acknowledged commit is lost when it is stopped in immediate mode (a crash)."""
    folder = Path(tempfile.mkdtemp(prefix="posinv_h_pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres", group="postgres")
    pg = PrivatePostgres(folder, free_port(), durable_commits=durable_commits)
    try:
        result = subprocess.run(
            _as_postgres_user([_pg_tool("initdb"), "-D", str(pg.data), "-U", "postgres", "-A", "trust",
                               "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"]),
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


class PrivateRedis:
    """A redis-server child on 127.0.0.1:`port`, no persistence."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.child = None

    def start(self) -> None:
        self.child = spawn(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, name=f"redis-{self.port}",
        )
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_until(lambda: client.ping(), timeout=20, message=f"private redis on {self.port}")

    def stop(self) -> None:
        """Gone at once, as in a crash (no save: nothing persisted)."""
        if self.child is not None:
            self.child.kill_hard()
            self.child = None
            time.sleep(0.1)

    def running(self) -> bool:
        return self.child is not None and self.child.alive()


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
