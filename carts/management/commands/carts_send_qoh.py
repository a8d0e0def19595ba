"""`manage.py carts_send_qoh STORE`: push every linked product's available-to-sell now."""
from __future__ import annotations

from tqdm import tqdm

from carts.management.commands._base import StoreCommand
from carts.services.qoh import qoh_send


class Command(StoreCommand):
    help = "Send QOH to web store: push the available-to-sell of every linked product, with progress."

    def handle(self, *args, store: str, **options):
        target = self.store(store)
        bar = tqdm(total=0, unit="product", desc=f"send {target.code}", file=self.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = qoh_send(store=target, progress=progress)
        bar.close()
        self.stdout.write(f"{target.code}: queued {result.queued}, sent {result.sent}, waiting {result.waiting}, "
                          f"failed {result.failed}, HTTP calls {result.http_calls}")
        if result.waiting or result.failed:
            raise SystemExit(1)
