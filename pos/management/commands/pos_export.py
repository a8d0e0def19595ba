"""`manage.py pos_export --process P [--include-receipts] | --receipt R`:
write a POS process (optionally with its receipts) or a receipt to the
synchronization entries again (the same as Export on its card)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pos.models import PosProcess, Receipt
from pos.services.entries import pos_process_export, receipt_export


class Command(BaseCommand):
    help = "Re-export a POS process or a receipt to the synchronization entries."

    def add_arguments(self, parser):
        parser.add_argument("--register", required=True, help="register code")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--process", help="POS process no.")
        group.add_argument("--receipt", help="receipt no.")
        parser.add_argument("--include-receipts", action="store_true", help="with a process: all its receipts too")

    def handle(self, *args, register, process, receipt, include_receipts, **options):
        if process:
            row = PosProcess.objects.filter(register__code=register, process_no=process).first()
            if row is None:
                raise CommandError(f"no POS process {process!r} on register {register!r}")
            entries = pos_process_export(process_id=row.pk, include_receipts=include_receipts)
        else:
            row = Receipt.objects.filter(register__code=register, receipt_no=receipt).first()
            if row is None:
                raise CommandError(f"no receipt {receipt!r} on register {register!r}")
            entries = receipt_export(receipt_id=row.pk)
        if not entries:
            raise CommandError("nothing exported: the register's tables exclude these records")
        self.stdout.write(f"{len(entries)} entries written (entry no. {entries[0].entry_no}–{entries[-1].entry_no})")
