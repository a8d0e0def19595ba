"""`manage.py verify_ledger_recorded`: the ledger check, recorded as a job run
the sync-health dashboard shows. Exits 1 with the drifting pairs on drift."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ops.services import LedgerDrift, ledger_verification_run


class Command(BaseCommand):
    help = "Check every stock level against the sum of its moves and record the run for the dashboard."

    def handle(self, *args, **options):
        try:
            counts = ledger_verification_run()
        except LedgerDrift as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"ledger ok ({counts['drifting']} drifting pairs); run recorded"))
