"""`manage.py carts_reconcile STORE`: where the store and the ledger disagree (exit 1 if anywhere)."""
from __future__ import annotations

from carts.management.commands._base import StoreCommand
from carts.services.qoh import qoh_reconcile


class Command(StoreCommand):
    help = "Compare the store's quantities with the ledger's available-to-sell."

    def handle(self, *args, store: str, **options):
        target = self.store(store)
        rows = qoh_reconcile(store=target)
        for row in rows:
            self.stdout.write(f"{row['sku']}\tledger {row['ledger']}\tstore {row['store']}\t"
                              f"difference {row['difference']}")
        self.stdout.write(f"{target.code}: {len(rows)} products disagree")
        if rows:
            raise SystemExit(1)
