"""One heartbeat thread per process: the proof that a job run or a worker
is alive.

A process that runs work (an rqworker, or a web or scheduler process running
jobs inline) registers a beat here; a daemon thread calls every registered
beat each POSINV_HEARTBEAT_SECONDS. Job runs stamp `JobRun.heartbeat_at`
(posinv/services/runs.py), posinv's RQ worker stamps its Redis record
(posinv/worker.py). A process killed with SIGKILL stops beating, so whatever
it held is seen as dead after POSINV_DEAD_AFTER_SECONDS, wherever it ran,
with no cooperation from the dead process.

The thread is separate from the work on purpose: a long job (a "Send QOH",
a pull that waits on a slow register) keeps beating while it works."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection

logger = logging.getLogger("posinv.heartbeat")

_beats: dict[str, Callable[[], None]] = {}
_failing: dict[str, float] = {}  # beat name -> monotonic time it started failing
_lock = threading.Lock()
_started_in_pid: int | None = None


def heartbeat_seconds() -> float:
    return float(getattr(settings, "POSINV_HEARTBEAT_SECONDS", 5))


def dead_after_seconds() -> float:
    return float(getattr(settings, "POSINV_DEAD_AFTER_SECONDS", 30))


def heartbeat_register(name: str, beat: Callable[[], None]) -> None:
    """Call `beat()` every heartbeat until `heartbeat_unregister(name)`."""
    global _started_in_pid
    with _lock:
        _beats[name] = beat
        # A forked child (RQ's forking Worker) has the parent's globals but not its thread.
        if _started_in_pid != os.getpid():
            _started_in_pid = os.getpid()
            threading.Thread(target=_loop, name="posinv-heartbeat", daemon=True).start()


def heartbeat_unregister(name: str) -> None:
    with _lock:
        _beats.pop(name, None)


def heartbeat_beat_now() -> None:
    """Run every registered beat once, in the calling thread."""
    with _lock:
        beats = list(_beats.items())
    for name, beat in beats:
        try:
            beat()
        except Exception as exc:
            # A beat that cannot reach its store (database or Redis down) makes
            # this process look dead from outside, which is the truth: its work
            # cannot proceed either. Said once when it starts, once when it ends.
            if name not in _failing:
                _failing[name] = time.monotonic()
                logger.warning("heartbeat %s not sent: %s: %s (said once until it recovers)", name,
                               type(exc).__name__, str(exc).strip()[:200])
        else:
            if name in _failing:
                logger.warning("heartbeat %s sent again after %.0f s", name, time.monotonic() - _failing.pop(name))


def _loop() -> None:
    stop = threading.Event()
    while not stop.wait(heartbeat_seconds()):
        if not _beats:
            continue
        try:
            heartbeat_beat_now()
        finally:
            # This thread's own connection: closed after each beat, so it never
            # outlives a database restart nor holds a connection between beats.
            try:
                connection.close()
            except Exception:  # a connection already broken: nothing left to close
                pass
