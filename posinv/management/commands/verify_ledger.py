"""`manage.py verify_ledger`: on_hand == sum of moves for every pair."""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from posinv.selectors import ledger_drift


def _shown(value: Decimal) -> str:
    return f"{Decimal(value).normalize():f}" if value else "0"


class Command(BaseCommand):
    help = "Check that every stock level equals the sum of its moves; list drifting pairs, exit 1 if any."

    def handle(self, *args, **options):
        drifting = 0
        for drift in ledger_drift():
            drifting += 1
            self.stdout.write(
                f"{drift.sku} @ {drift.location_code}: on_hand {_shown(drift.on_hand)} != sum of moves "
                f"{_shown(drift.moves_sum)} (difference {_shown(drift.difference)})"
            )
        if drifting:
            raise CommandError(f"{drifting} drifting (article, location) pairs")
        self.stdout.write(self.style.SUCCESS("ledger ok: every level equals the sum of its moves"))
