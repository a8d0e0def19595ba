"""`manage.py carts_send_qoh STORE`: push every linked product's available-to-sell now."""
from __future__ import annotations

from tqdm import tqdm

from carts.management.commands._base import StoreCommand
from carts.services.qoh import qoh_send


class Command(StoreCommand):
    help = ("Send QOH to web store: push the available-to-sell of every linked product, with progress. "
            "Running workers may send some of them; the summary counts what was really sent, by anyone.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--wait", type=float, default=600,
                            help="seconds to follow the products to their outcome (default 600)")

    def handle(self, *args, store: str, wait: float = 600, **options):
        target = self.store(store)
        bar = tqdm(total=0, unit="product", desc=f"send {target.code}", file=self.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = qoh_send(store=target, progress=progress, time_budget=wait)
        bar.close()
        self.stdout.write(f"{target.code}: queued {result.queued}, sent {result.sent}, failed {result.failed}, "
                          f"still in flight {result.waiting}, HTTP calls by this command {result.http_calls}")
        if result.failed:
            self.stderr.write(f"{result.failed} products failed: see the web stack's failed entries "
                              "(last response) and Retry them once the cause is fixed")
        if result.waiting:
            retry = f"; the next retry is due at {result.next_attempt_at}" if result.next_attempt_at else ""
            self.stderr.write(f"{result.waiting} products are still in flight (waiting for a retry after an error, "
                              f"or being sent by a worker when --wait {wait:g}s ran out){retry}; the web stack "
                              "carries on with them")
        if result.waiting or result.failed:
            raise SystemExit(1)
