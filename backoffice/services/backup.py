"""Backup and restore of the whole database, with a SHA-256 checksum.

PostgreSQL: `pg_dump --format=custom` (one consistent snapshot: pg_dump
reads in a single repeatable-read transaction) and `pg_restore --clean
--single-transaction`, so a failed restore leaves the database as it was.
pg_dump must not be older than the server: we look for the binary of the
server's major version (/usr/lib/postgresql/<major>/bin) before PATH.
SQLite: the online backup API (a consistent copy while others write).

Next to the snapshot `<file>.sha256` holds "<hex>  <name>" (sha256sum's
format); restore refuses a file whose checksum does not match."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from posinv.exceptions import InvalidInput, Problem


class BackupError(Exception):
    """A backup or restore that could not be done, with the reason."""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    checksum: str
    size: int
    engine: str


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _engine() -> str:
    if connection.vendor == "postgresql":
        return "postgresql"
    if connection.vendor == "sqlite":
        return "sqlite"
    raise BackupError(f"backup supports PostgreSQL and SQLite, not {connection.vendor}")


def _server_major() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0]) // 10000


def pg_tool(name: str) -> str:
    """The pg_dump / pg_restore matching the server's major version."""
    major = _server_major()
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin/{name}")]
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if not candidate.exists():
            continue
        output = subprocess.run([str(candidate), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", output)
        if match and int(match.group(1)) >= major:
            return str(candidate)
    raise BackupError(
        f"no {name} of version {major} or newer found (the server is PostgreSQL {major}); "
        f"install postgresql-client-{major}"
    )


def _pg_env() -> tuple[list[str], dict[str, str]]:
    params = connection.settings_dict
    env = dict(os.environ)
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = str(params["PASSWORD"])
    args = ["--host", params.get("HOST") or "127.0.0.1", "--port", str(params.get("PORT") or 5432)]
    args += ["--username", params.get("USER") or "postgres", "--dbname", params["NAME"]]
    return args, env


def database_backup(*, output: Path) -> Snapshot:
    """Write a consistent snapshot of the database to `output` and its
    checksum next to it. An existing file is not overwritten."""
    output = Path(output)
    if output.exists():
        raise InvalidInput([Problem(field="output", reason=f"{output} exists; choose a new file name")])
    if not output.parent.is_dir():
        raise InvalidInput([Problem(field="output", reason=f"folder {output.parent} does not exist")])
    engine = _engine()
    partial = output.with_name(output.name + ".partial")
    try:
        if engine == "postgresql":
            args, env = _pg_env()
            result = subprocess.run(
                [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(partial), *args],
                capture_output=True,
                text=True,
                env=env,
            )
            if result.returncode != 0:
                raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
        else:
            target = sqlite3.connect(partial)
            try:
                connection.ensure_connection()
                connection.connection.backup(target)
            finally:
                target.close()
        partial.rename(output)
    finally:
        partial.unlink(missing_ok=True)
    checksum = file_checksum(output)
    _checksum_path(output).write_text(f"{checksum}  {output.name}\n")
    return Snapshot(path=output, checksum=checksum, size=output.stat().st_size, engine=engine)


def snapshot_verify(*, path: Path) -> str:
    """The snapshot's checksum, after checking it against its .sha256 file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput([Problem(field="input", reason=f"{path} does not exist")])
    sums = _checksum_path(path)
    if not sums.is_file():
        raise InvalidInput([Problem(field="input", reason=f"checksum file {sums.name} is missing")])
    expected = sums.read_text().split()[0] if sums.read_text().split() else ""
    actual = file_checksum(path)
    if actual != expected:
        raise InvalidInput(
            [Problem(field="input", code="checksum", reason=f"checksum mismatch: file {actual}, recorded {expected}")]
        )
    return actual


def database_restore(*, path: Path) -> Snapshot:
    """Replace the database's contents with the snapshot at `path`, after
    verifying its checksum. All or nothing."""
    path = Path(path)
    checksum = snapshot_verify(path=path)
    engine = _engine()
    if engine == "postgresql":
        if path.read_bytes()[:5] != b"PGDMP":
            raise InvalidInput([Problem(field="input", reason=f"{path.name} is not a pg_dump custom-format file")])
        args, env = _pg_env()
        # Our own connection would block DROP TABLE; close it first.
        connection.close()
        result = subprocess.run(
            [
                pg_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                *args,
                str(path),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed (nothing was changed): {result.stderr.strip()}")
    else:
        if path.read_bytes()[:16] != b"SQLite format 3\x00":
            raise InvalidInput([Problem(field="input", reason=f"{path.name} is not an SQLite database file")])
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            connection.ensure_connection()
            # The backup API copies page by page under the target's write lock: all or nothing.
            source.backup(connection.connection)
        finally:
            source.close()
    return Snapshot(path=path, checksum=checksum, size=path.stat().st_size, engine=engine)
