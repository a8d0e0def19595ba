"""`manage.py entries_retry CODE`: apply a register's failed entries again."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pos.models import CashRegister
from pos.services.apply import entries_advance, entries_retry


class Command(BaseCommand):
    help = "Main system: retry failed entries of a register (after the cause, say an unknown SKU, is fixed)."

    def add_arguments(self, parser):
        parser.add_argument("code")

    def handle(self, *args, code, **options):
        register = CashRegister.objects.filter(code=code).first()
        if register is None:
            raise CommandError(f"no register {code!r}")
        counts = entries_retry(register_id=register.pk)
        advanced = entries_advance(register_id=register.pk)
        self.stdout.write(
            f"{code}: {counts['applied']} applied, {counts['failed']} still failed"
            + (f", {advanced} waiting entries applied" if advanced else "")
        )
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} entries still fail; see the entries list for the reasons")
