"""A real main system and real register nodes for the register tests:
separate processes on 127.0.0.1 with their own databases (PostgreSQL when
the suite runs on it), provisioned through management commands."""
from __future__ import annotations

import atexit
import json
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import requests
from django.conf import settings

from tests.support.processes import (
    _admin_conninfo,
    create_database,
    database_url,
    drop_database,
    manage,
    process_env,
    started_command,
    started_server,
    started_worker,
)

SKUS = [f"SKU-{n:03d}" for n in range(1, 21)]
OPENING = Decimal("100000")

PROVISION = """
from decimal import Decimal
from django.contrib.auth import get_user_model
from posinv.models import Article, Location
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from django.contrib.auth.models import Permission
from posinv.services.tokens import token_issue
for code in {locations!r}:
    Location.objects.get_or_create(code=code, defaults={{"name": "Store " + code}})
for sku in {skus!r}:
    Article.objects.get_or_create(sku=sku, defaults={{"name": "Article " + sku}})
stock_moves_post(
    moves=[MoveSpec(kind="receipt", idempotency_key="open:" + sku + ":" + code, quantity=Decimal({opening!r}),
                    sku=sku, location_code=code) for sku in {skus!r} for code in {locations!r}],
    origin=StockOrigin(kind="system", code="test"),
)
user = get_user_model().objects.create_user("staff", is_staff=True)
# Reading stock levels needs the model permission (StaffWithPermissions).
user.user_permissions.add(Permission.objects.get(codename="view_stocklevel"))
print("TOKEN=" + token_issue(kind="user", subject="staff", user=user))
"""


_templates: dict[str, str] = {}


def migrated_database(url: str) -> None:
    """Create the database of `url` already migrated: a copy of one
    template migrated once per test session (PostgreSQL `CREATE DATABASE
    ... TEMPLATE`, a file copy on SQLite). Main systems and nodes run the
    same migrations; migrating each afresh costs most of a test."""
    kind = "postgres" if url.startswith("postgres") else "sqlite"
    if kind not in _templates:
        template = database_url("regtpl")
        create_database(template)
        manage("migrate", "--noinput", env=process_env(database=template, redis=False))
        _templates[kind] = template
        atexit.register(drop_database, template)
    template = _templates[kind]
    if kind == "sqlite":
        shutil.copyfile(template.removeprefix("sqlite:///"), url.removeprefix("sqlite:///"))
        return
    import psycopg

    admin, name = _admin_conninfo(url)
    _, template_name = _admin_conninfo(template)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')


def database_copy(source: str, target: str) -> None:
    """Make database `target` an exact copy of `source` (a backup, or its
    restore), replacing it. The processes using either must be stopped."""
    if source.startswith("sqlite"):
        shutil.copyfile(source.removeprefix("sqlite:///"), target.removeprefix("sqlite:///"))
        return
    import psycopg

    admin, target_name = _admin_conninfo(target)
    _, source_name = _admin_conninfo(source)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target_name}" TEMPLATE "{source_name}"')


def node_redis_url() -> str | None:
    """A Redis database for register nodes apart from the main system's, so
    a main worker never takes a node's job (both use the queues high,
    default and low)."""
    if not settings.REDIS_URL:
        return None
    base, number = settings.REDIS_URL.rsplit("/", 1)
    return f"{base}/{(int(number) - 8) % 16}"


def flush_node_redis() -> None:
    """Empty the Redis databases of this suite's main and node processes
    (never any other database)."""
    if settings.REDIS_URL:
        import redis

        for url in (settings.REDIS_URL, node_redis_url()):
            redis.Redis.from_url(url).flushdb()


@dataclass
class Main:
    url: str
    env: dict
    staff_token: str
    tokens: dict = field(default_factory=dict)

    def get(self, path: str, **params) -> dict:
        response = requests.get(f"{self.url}{path}", params=params, timeout=30,
                                headers={"Authorization": f"Token {self.staff_token}"})
        assert response.status_code == 200, response.text
        return response.json()

    def status(self, code: str) -> dict:
        return self.get(f"/api/v1/registers/{code}/")

    def on_hand(self, location: str) -> dict[str, Decimal]:
        rows = self.get("/api/v1/stock-levels/", location=location, limit=1000)["results"]
        return {row["sku"]: Decimal(row["on_hand"]) for row in rows}

    def receipts(self, code: str) -> list[dict]:
        out, offset = [], 0
        while True:
            page = self.get(f"/api/v1/registers/{code}/receipts/", limit=500, offset=offset)
            out += page["results"]
            offset += 500
            if not page["next"]:
                return out


def provision(env: dict, *, locations: list[str]) -> str:
    result = manage("shell", "-c", PROVISION.format(locations=locations, skus=SKUS, opening=str(OPENING)), env=env)
    return re.search(r"TOKEN=(\S+)", result.stdout).group(1)


def create_register(main: Main, code: str, *, location: str, sync_type: str = "push", records_per_run: int = 500,
                    interval: int = 1, node_url: str = "") -> str:
    args = ["create_register", code, "--location", location, "--type", sync_type,
            "--records-per-run", str(records_per_run), "--interval", str(interval)]
    if node_url:
        args += ["--node-url", node_url]
    token = manage(*args, env=main.env).stdout.strip()
    main.tokens[code] = token
    return token


@contextmanager
def main_system(label: str = "main", *, locations: list[str] = ("S1",), **extra_env):
    """A migrated, provisioned main system served by gunicorn."""
    env = process_env(database=database_url(label), **extra_env)
    migrated_database(env["DATABASE_URL"])
    try:
        with started_server(env=env, name=label, migrate=False) as url:
            token = provision(env, locations=list(locations))
            yield Main(url=url, env=env, staff_token=token)
    finally:
        drop_database(env["DATABASE_URL"])


def node_env(main: Main, code: str, *, label: str, **extra) -> dict:
    env = process_env(
        database=database_url(label), redis=False, POSINV_NODE="register", MAIN_URL=main.url,
        POSINV_REGISTER_CODE=code, POSINV_REGISTER_TOKEN=main.tokens[code], **extra,
    )
    if node_redis_url():
        env["REDIS_URL"] = node_redis_url()
    return env


@contextmanager
def node_database(env: dict):
    migrated_database(env["DATABASE_URL"])
    try:
        yield env
    finally:
        drop_database(env["DATABASE_URL"])


def sales(count: int, *, prefix: str, lines_per_receipt: int = 2) -> list[dict]:
    """`count` receipts in the till API's shape; the n-th sells SKUs in turn,
    every 10th line is a return."""
    out = []
    for n in range(1, count + 1):
        lines = []
        for line_no in range(1, lines_per_receipt + 1):
            sku = SKUS[(n * lines_per_receipt + line_no) % len(SKUS)]
            quantity = "-1" if (n + line_no) % 10 == 0 else str(1 + (n + line_no) % 3)
            lines.append({"line_no": line_no, "sku": sku, "quantity": quantity, "unit_price": "2.50"})
        total = sum(Decimal(line["quantity"]) * Decimal("2.50") for line in lines)
        out.append({
            "receipt_no": f"{prefix}-{n:06d}",
            "created_at": f"2026-03-02T{8 + n // 3600 % 10:02d}:{n // 60 % 60:02d}:{n % 60:02d}+00:00",
            "process_no": f"{prefix}-P1",
            "lines": lines,
            "payments": [{"line_no": 1, "method": "cash", "amount": str(total)}],
        })
    return out


def expected_on_hand(receipts: list[dict]) -> dict[str, Decimal]:
    stock = {sku: OPENING for sku in SKUS}
    for receipt in receipts:
        for line in receipt["lines"]:
            stock[line["sku"]] -= Decimal(line["quantity"])
    return stock


def record_sales_file(env: dict, receipts: list[dict], tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(receipts))
    manage("record_sales", str(path), "--no-progress", env=env)


__all__ = ["main_system", "node_env", "node_database", "started_command", "started_worker", "started_server"]
