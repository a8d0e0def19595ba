"""manage.py reports_rollup [--rebuild] [--chunk-days N]: bring the daily
sales rollup up to date (the scheduled run), or recreate it whole."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from backoffice.services.rollup import sales_rollup_rebuild, sales_rollup_refresh
from posinv.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Update the daily sales rollup the reports read (--rebuild: recreate it from every receipt)."

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="recreate the whole rollup from the receipts")
        parser.add_argument("--chunk-days", type=int, default=7, help="days per transaction when rebuilding")

    def handle(self, *args, **options):
        if options["rebuild"]:

            def progress(done: int, total: int) -> None:
                width = 30
                filled = width * done // total
                self.stdout.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} days", ending="")
                self.stdout.flush()
                if done == total:
                    self.stdout.write("")

            try:
                result = sales_rollup_rebuild(chunk_days=options["chunk_days"], progress=progress)
            except InvalidInput as exc:
                raise CommandError(str(exc)) from exc
        else:
            result = sales_rollup_refresh()
        verb = "rebuilt" if result.rebuilt else "re-rolled"
        self.stdout.write(self.style.SUCCESS(f"{result.days} days {verb}; complete through {result.complete_through}"))
        sys.stdout.flush()
