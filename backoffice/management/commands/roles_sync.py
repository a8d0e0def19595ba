"""`manage.py roles_sync`: re-create the role groups with their permissions."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from backoffice.roles import roles_sync


class Command(BaseCommand):
    help = "Create or update the cashier, stock clerk, purchaser and manager groups."

    def handle(self, *args, **options):
        try:
            counts = roles_sync()
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count} permissions")
