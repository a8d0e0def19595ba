"""`manage.py verify_ledger`: on_hand == sum of moves for every pair; the run
is recorded for the sync-health dashboard."""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from posinv.services.verification import ledger_verify


def _shown(value: Decimal) -> str:
    return f"{Decimal(value).normalize():f}" if value else "0"


class Command(BaseCommand):
    help = (
        "Check that every stock level equals the sum of its moves; list drifting pairs, exit 1 if any. "
        "The run is recorded as a job run (shown on the sync-health dashboard)."
    )

    def handle(self, *args, **options):
        drifting = ledger_verify()
        for drift in drifting:
            self.stdout.write(
                f"{drift.sku} @ {drift.location_code}: on_hand {_shown(drift.on_hand)} != sum of moves "
                f"{_shown(drift.moves_sum)} (difference {_shown(drift.difference)})"
            )
        if drifting:
            raise CommandError(f"{len(drifting)} drifting (article, location) pairs")
        self.stdout.write(self.style.SUCCESS("ledger ok: every level equals the sum of its moves"))
