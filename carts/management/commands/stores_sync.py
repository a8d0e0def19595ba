"""`manage.py stores_sync STORE [--stock] [--prices] [--confirm]`: run a store's stock and/or price sync now."""
from __future__ import annotations

from carts.management.commands._base import StoreCommand
from carts.services.warehouses import store_price_run, store_stock_run


class Command(StoreCommand):
    help = "Run a superior/inferior store's stock and price synchronization now (both unless one is named)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--stock", action="store_true")
        parser.add_argument("--prices", action="store_true")
        parser.add_argument("--confirm", action="store_true",
                            help="accept a download that zeroes most products or cuts most prices")

    def handle(self, *args, store: str, stock: bool, prices: bool, confirm: bool, **options):
        target = self.store(store)
        both = not stock and not prices
        if (stock or both) and target.stock_direction != target.Direction.NONE:
            run = store_stock_run(store=target, confirm=confirm)
            if run.paused_until is not None:
                self.stdout.write(f"{target.code} stock: paused by the platform's rate limit after "
                                  f"{run.pages_read} pages; goes on from page {run.next_page} at "
                                  f"{run.paused_until:%H:%M:%S} (run again or let the schedule)")
            elif run.sent is not None:
                self.stdout.write(f"{target.code} stock: sent {run.sent.sent}, waiting {run.sent.waiting}, "
                                  f"failed {run.sent.failed}")
            else:
                self.stdout.write(f"{target.code} stock: read {run.read}, counted {run.counted}, "
                                  f"unchanged {run.unchanged}, not linked {run.unlinked}")
            for bad in run.bad_rows:
                self.stdout.write(f"  row {bad.row}: {bad.reason}")
        if (prices or both) and target.price_direction != target.Direction.NONE:
            result = store_price_run(store=target, confirm=confirm)
            if result.paused_until is not None:
                self.stdout.write(f"{target.code} prices: paused by the platform's rate limit after "
                                  f"{result.pages_read} pages; goes on from page {result.next_page} at "
                                  f"{result.paused_until:%H:%M:%S}")
                return
            self.stdout.write(f"{target.code} prices: read {result.read}, changed {result.changed}, "
                              f"unchanged {result.unchanged}, sent {result.sent}")
            for error in result.errors:
                self.stdout.write(f"  {error}")
