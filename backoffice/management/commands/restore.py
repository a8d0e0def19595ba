"""`manage.py restore FILE`: verify the checksum, then replace the database's contents."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backoffice.services.backup import BackupError, database_restore
from posinv.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Restore a snapshot written by `backup` (its .sha256 file must match). Replaces all data."

    def add_arguments(self, parser):
        parser.add_argument("snapshot", help="the snapshot file")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, snapshot, yes=False, **options):
        if not yes and options.get("interactive", True):
            answer = input(f"Replace ALL data with {snapshot}? Type 'yes': ")
            if answer != "yes":
                raise CommandError("restore cancelled")
        self.stdout.write(f"verifying and restoring {snapshot} ...")
        try:
            snapshot = database_restore(path=Path(snapshot))
        except (InvalidInput, BackupError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"restored {snapshot.path} (sha256 {snapshot.checksum})"))
