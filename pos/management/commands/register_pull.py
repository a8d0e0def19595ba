"""`manage.py register_pull [CODE ...]`: on the main system, pull now from
the given pull registers (all active pull registers without CODE)."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from pos.models import CashRegister
from pos.services.transfer import NodeUnreachable, register_pull
from posinv.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Main system: fetch, apply and acknowledge the outbox of pull registers now."

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*")

    def handle(self, *args, codes, **options):
        registers = CashRegister.objects.filter(sync_type=CashRegister.SyncType.PULL, active=True)
        if codes:
            registers = CashRegister.objects.filter(code__in=codes)
            missing = set(codes) - set(registers.values_list("code", flat=True))
            if missing:
                raise CommandError(f"no register(s) {', '.join(sorted(missing))}")
        failed = []
        for register in registers.order_by("code"):
            try:
                counts = register_pull(register_id=register.pk, progress=self._progress(register.code))
            except (NodeUnreachable, InvalidInput) as exc:
                failed.append(register.code)
                self.stderr.write(f"{register.code}: {exc}")
                continue
            self.stdout.write(f"{register.code}: {json.dumps(counts)}")
        if failed:
            raise CommandError(f"pull failed for {', '.join(failed)}")

    def _progress(self, code: str):
        def report(counts: dict) -> None:
            self.stderr.write(
                f"{code} page {counts['calls']}: {counts['received']} received, {counts['applied']} applied, "
                f"{counts['failed']} failed; applied through entry {counts['last_applied_entry_no']}"
            )

        return report
