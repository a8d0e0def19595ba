"""`manage.py reorder_compute`: reorder points and order-up-to levels from sales."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from backoffice.services.reorder import reorder_levels_compute
from posinv.exceptions import InvalidInput
from posinv.models import Location


class Command(BaseCommand):
    help = (
        "Recompute reorder points (avg daily sales x lead time x (1 + safety factor)) and order-up-to "
        "levels (+ avg daily sales x review days) for every article and location that sold in the window."
    )

    def add_arguments(self, parser):
        parser.add_argument("--window-days", type=int, default=28)
        parser.add_argument("--safety-factor", default="0.5")
        parser.add_argument("--review-days", type=int, default=7)
        parser.add_argument("--location", action="append", default=[], help="location code (repeatable)")
        parser.add_argument("--today", help="YYYY-MM-DD: the last day of the window (default: today)")
        parser.add_argument("--include-manual", action="store_true", help="also overwrite levels set by hand")

    def handle(self, *args, **options):
        try:
            safety = Decimal(options["safety_factor"])
        except InvalidOperation as exc:
            raise CommandError(f"--safety-factor: {options['safety_factor']!r} is not a number") from exc
        today = None
        if options["today"]:
            try:
                today = date.fromisoformat(options["today"])
            except ValueError as exc:
                raise CommandError(f"--today: {options['today']!r} is not a date (YYYY-MM-DD)") from exc
        location_ids = None
        if options["location"]:
            found = dict(Location.objects.filter(code__in=options["location"]).values_list("code", "pk"))
            unknown = sorted(set(options["location"]) - found.keys())
            if unknown:
                raise CommandError(f"--location: unknown location {', '.join(unknown)}")
            location_ids = list(found.values())

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  {done}/{total} pairs")

        try:
            result = reorder_levels_compute(
                window_days=options["window_days"],
                safety_factor=safety,
                review_days=options["review_days"],
                location_ids=location_ids,
                include_manual=options["include_manual"],
                progress=progress,
                today=today,
            )
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"{result.updated} levels computed, {result.kept_manual} set by hand kept")
        )
