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
        parser.add_argument("--take-from-other-locations", action="store_true",
                            help="when the order location cannot absorb a drop, take the rest from the store's "
                                 "other locations (in code order, each down to zero)")

    def handle(self, *args, store: str, confirm: bool, take_from_other_locations: bool = False, **options):
        target = self.store(store)
        bar = tqdm(total=0, unit="product", desc=f"read {target.code}", file=self.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = qoh_get(store=target, confirm=confirm, take_from_other_locations=take_from_other_locations,
                         progress=progress)
        bar.close()
        summary = f"{target.code}: read {result.read}, counted {result.counted}, unchanged {result.unchanged}"
        if result.refused:
            summary += f", refused {len(result.refused)}"
        self.stdout.write(summary)
        for sku in result.missing:
            self.stdout.write(f"  missing on the store: {sku}")
        for sku in result.spread:
            self.stdout.write(f"  taken partly from other locations: {sku}")
        for reason in result.refused:
            self.stderr.write(f"  refused {reason}")
        if result.refused:
            # The ledger does not equal the cart for these: say so with a failing exit.
            raise SystemExit(1)
