"""`manage.py purchase_orders_draft`: open suggestions into draft purchase orders."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from backoffice.services.purchasing import purchase_orders_draft


class Command(BaseCommand):
    help = "Group open order suggestions by preferred supplier and location into draft purchase orders."

    def handle(self, *args, **options):
        result = purchase_orders_draft()
        for order in result.orders:
            self.stdout.write(f"{order.number}: {order.supplier} -> {order.location.code}")
        for suggestion_id, reason in result.skipped:
            self.stdout.write(f"suggestion {suggestion_id} skipped: {reason}")
        self.stdout.write(self.style.SUCCESS(f"{len(result.orders)} draft orders, {result.lines_written} lines"))
