"""`manage.py scheduler_tick`: one tick of the scheduler (what cron would run)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from posinv.scheduling import scheduler_tick


class Command(BaseCommand):
    help = "Enqueue every job that is due now (once), and print their keys."

    def handle(self, *args, **options):
        offered = scheduler_tick()
        for key in offered:
            self.stdout.write(key)
        self.stdout.write(f"{len(offered)} due")
