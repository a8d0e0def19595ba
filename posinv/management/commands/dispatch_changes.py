"""`manage.py dispatch_changes`: hand the change outbox to its consumers now."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from posinv.jobs import changes_dispatch_job


class Command(BaseCommand):
    help = "Dispatch pending stock changes (the outbox) to the consumers now."

    def handle(self, *args, **options):
        handled = changes_dispatch_job()
        self.stdout.write(f"{handled} changes dispatched")
