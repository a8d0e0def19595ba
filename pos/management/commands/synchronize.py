"""`manage.py synchronize CODE [CODE ...]`: the admin's "Synchronize" on the
main system: a pull register is fetched now, a push register's node is asked
to send now."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pos.models import CashRegister
from pos.services.node import is_node
from pos.services.transfer import NodeUnreachable, register_synchronize
from posinv.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Main system: synchronize registers now (pull registers: fetch; push registers: ask the node to send)."

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="+")

    def handle(self, *args, codes, **options):
        if is_node():
            raise CommandError("on a register node use register_push")
        registers = list(CashRegister.objects.filter(code__in=codes).order_by("code"))
        missing = set(codes) - {register.code for register in registers}
        if missing:
            raise CommandError(f"no register(s) {', '.join(sorted(missing))}")
        failed = []
        for register in registers:
            try:
                self.stdout.write(register_synchronize(register_id=register.pk))
            except (NodeUnreachable, InvalidInput) as exc:
                failed.append(register.code)
                self.stderr.write(f"{register.code}: {exc}")
        if failed:
            raise CommandError(f"synchronize failed for {', '.join(failed)}")
