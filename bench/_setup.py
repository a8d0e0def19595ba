"""Shared set-up of the benchmarks: a throw-away database next to the one
DATABASE_URL names (PostgreSQL: `<name>_bench_<script>`, dropped afterwards;
otherwise a temporary SQLite file), migrated, with Django configured."""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
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
