"""`manage.py prune_readings --days 90`: delete old weight readings (they
grow by one per tray and interval); shrink-alert readings are kept."""
from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cabinets.services.readings import readings_prune


class Command(BaseCommand):
    help = "Delete weight readings older than --days (default 90), keeping those behind shrink alerts."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90)

    def handle(self, *args, days, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        before = timezone.now() - timedelta(days=days)
        deleted = readings_prune(before=before, progress=lambda n: self.stdout.write(f"{n} readings deleted ..."))
        self.stdout.write(f"{deleted} readings read before {before:%Y-%m-%d %H:%M} deleted")
