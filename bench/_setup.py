"""Shared set-up of the benchmarks: a throw-away database next to the one
DATABASE_URL names (PostgreSQL: `<name>_bench_<script>`, dropped afterwards;
otherwise a temporary SQLite file), migrated, with Django configured."""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]


def django_for_bench(label: str) -> str:
    """Configure Django on a fresh database for benchmark `label`; returns its vendor."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("SECRET_KEY", "posinv-bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["POSINV_JOBS_INLINE"] = "1"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        parts = urlsplit(url)
        name = f"{parts.path.lstrip('/')}_bench_{label}"
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop():
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        atexit.register(drop)
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["POSINV_VAR_DIR"] = tempfile.mkdtemp(prefix=f"posinv-bench-{label}-")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    return connection.vendor


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime


class CpuMeter:
    """CPU seconds used by groups of processes while it runs (a `with` block). Each group is a function
    giving its current pids; a thread samples them twice a second, so processes that start or end meanwhile
    (a web worker reconnecting to the database) count for what they used while it watched."""

    def __init__(self, groups: dict[str, Callable[[], set[int]]], interval: float = 0.5):
        self.groups, self.interval = groups, interval
        self.first: dict[str, dict[int, int]] = {name: {} for name in groups}
        self.last: dict[str, dict[int, int]] = {name: {} for name in groups}
        self._stop = threading.Event()

    def _sample(self, *, first: bool = False) -> None:
        for name, pids_of in self.groups.items():
            for pid in pids_of():
                ticks = _cpu_ticks(pid)
                if ticks is None:
                    continue
                # A process first seen after the start began during the run: all its CPU counts.
                self.first[name].setdefault(pid, ticks if first else 0)
                self.last[name][pid] = ticks

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def seconds(self) -> dict[str, float]:
        hz = os.sysconf("SC_CLK_TCK")
        return {
            name: sum(ticks - self.first[name][pid] for pid, ticks in self.last[name].items()) / hz
            for name in self.groups
        }


def process_tree(roots: Iterable[int]) -> set[int]:
    """The processes `roots` and all their descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    pids, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in pids:
            pids.add(pid)
            todo += children.get(pid, [])
    return pids


def database_backends() -> Callable[[], set[int]]:
    """A function giving the PostgreSQL backends that serve the bench database now (empty on SQLite). They are
    found by their process title, with no query, so a `CpuMeter` thread can call it without a connection."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return set
    title = f" {connection.settings_dict['NAME']} ".encode()

    def pids() -> set[int]:
        found = set()
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes()
            except OSError:
                continue
            if text.startswith(b"postgres: ") and title in text:
                found.add(int(cmdline.parent.name))
        return found

    return pids
