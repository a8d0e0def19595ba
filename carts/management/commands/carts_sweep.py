"""`manage.py carts_sweep [STORE]`: run the stack controller once now (all stores with due entries)."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from carts.models import ExternalStore
from carts.services.stack import stack_due_stores, stack_sweep


class Command(BaseCommand):
    help = "Send the web stack's due entries now."

    def add_arguments(self, parser):
        parser.add_argument("store", nargs="?", help="one store's code (default: every store with due entries)")

    def handle(self, *args, store: str | None, **options):
        ids = (list(ExternalStore.objects.filter(code=store).values_list("pk", flat=True)) if store
               else stack_due_stores())
        for store_id in ids:
            result = stack_sweep(store_id=store_id)
            self.stdout.write(f"store {store_id}: {result.as_counts()}")
