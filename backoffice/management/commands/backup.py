"""`manage.py backup [--output FILE]`: a consistent snapshot with its checksum."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice.services.backup import BackupError, database_backup
from posinv.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Back up the whole database (pg_dump on PostgreSQL, the backup API on SQLite) with a SHA-256 checksum."

    def add_arguments(self, parser):
        parser.add_argument("--output", help="snapshot file (default: var/backups/posinv-<time>.<ext>)")

    def handle(self, *args, output=None, **options):
        if output is None:
            folder = Path(settings.VAR_DIR) / "backups"
            folder.mkdir(parents=True, exist_ok=True)
            from django.db import connection

            ext = "dump" if connection.vendor == "postgresql" else "sqlite3"
            output = folder / f"posinv-{timezone.now():%Y%m%dT%H%M%S}.{ext}"
        self.stdout.write(f"backing up to {output} ...")
        try:
            snapshot = database_backup(output=Path(output))
        except (InvalidInput, BackupError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"backup written: {snapshot.path} ({snapshot.size} bytes, {snapshot.engine}) sha256 {snapshot.checksum}"
            )
        )
