"""`manage.py carts_import_orders STORE`: fetch and apply orders since the cursor now."""
from __future__ import annotations

from django.core.management.base import CommandError

from carts.management.commands._base import StoreCommand
from carts.services.orders import orders_import


class Command(StoreCommand):
    help = "Import the store's orders changed since its cursor; retry lines waiting for an article."

    def handle(self, *args, store: str, **options):
        target = self.store(store)
        result = orders_import(store=target)
        if result.skipped:
            raise CommandError(f"{target.code}: another import holds the lease; try again shortly")
        self.stdout.write(f"{target.code}: {result.orders} orders applied, {result.lines_unknown} lines wait for "
                          "an article")
        if result.failures:
            raise CommandError("failed orders (cursor kept): " + "; ".join(result.failures))
