"""`manage.py carts_link_products STORE`: match products by SKU / barcode and print the report."""
from __future__ import annotations

from tqdm import tqdm

from carts.management.commands._base import StoreCommand
from carts.services.links import links_match


class Command(StoreCommand):
    help = "Link our articles to the store's products by SKU, then barcode; report the rest."

    def handle(self, *args, store: str, **options):
        target = self.store(store)
        bar = tqdm(unit="product", desc=f"list {target.code}", file=self.stderr, disable=None)
        report = links_match(store=target, progress=lambda n: bar.update(n - bar.n))
        bar.close()
        counts = report["counts"]
        self.stdout.write(f"{target.code}: matched {counts['matched']}, missing here {counts['missing_here']}, "
                          f"missing on the store {counts['missing_there']}, ambiguous {counts['ambiguous']}")
        for item in report["ambiguous"]:
            self.stdout.write(f"  ambiguous {item['ref']} ({item.get('sku', '')}): {item['reason']}")
        for item in report["missing_here"]:
            self.stdout.write(f"  no article for {item['ref']} (sku {item['sku']!r}, barcode {item['barcode']!r})")
