"""`manage.py rotate_register_token CODE`: a new token for a register, printed once."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pos.models import CashRegister
from pos.services.transfer import register_token_rotate


class Command(BaseCommand):
    help = "Issue a new token for a cash register (the old one stops working) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("code")

    def handle(self, *args, code, **options):
        register = CashRegister.objects.filter(code=code).first()
        if register is None:
            raise CommandError(f"no register {code!r}")
        self.stdout.write(register_token_rotate(register_id=register.pk))
