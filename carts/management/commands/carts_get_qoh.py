"""`manage.py carts_get_qoh STORE [--confirm]`: take the store's quantities in as counts."""
from __future__ import annotations

from tqdm import tqdm

from carts.management.commands._base import StoreCommand
from carts.services.qoh import qoh_get


class Command(StoreCommand):
    help = "Get QOH from web store: post the store's quantities as counts (held if most would drop to zero)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--confirm", action="store_true", help="accept a pull that zeroes most products")

    def handle(self, *args, store: str, confirm: bool, **options):
        target = self.store(store)
        bar = tqdm(total=0, unit="product", desc=f"read {target.code}", file=self.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = qoh_get(store=target, confirm=confirm, progress=progress)
        bar.close()
        self.stdout.write(f"{target.code}: read {result.read}, counted {result.counted}, unchanged {result.unchanged}")
        for sku in result.missing:
            self.stdout.write(f"  missing on the store: {sku}")
        for refused in result.beyond:
            self.stdout.write(f"  refused: {refused}")
