"""`manage.py live_sales_prune --older-than-days 30`: forget old idempotency records of live sales."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from posinv.exceptions import DomainError
from retail.services.sales import live_sales_prune


class Command(BaseCommand):
    help = "Delete live-sale idempotency records older than N days (receipts and stock moves stay)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, default=30)

    def handle(self, *args, older_than_days: int, **options):
        try:
            deleted = live_sales_prune(older_than_days=older_than_days)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{deleted} live-sale idempotency record(s) older than {older_than_days} days deleted")
