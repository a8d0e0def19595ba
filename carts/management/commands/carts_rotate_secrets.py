"""`manage.py carts_rotate_secrets`: re-encrypt every store's secrets with
the first key of POSINV_SECRET_KEY_ENCRYPTION (docs/carts.md, key rotation)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from carts.models import ExternalStore
from carts.services.stores import StoreSecretsUnreadable, store_secrets_rotate


class Command(BaseCommand):
    help = ("Re-encrypt the external stores' secrets with the first key of POSINV_SECRET_KEY_ENCRYPTION "
            "(list the old keys after it until this has run).")

    def handle(self, *args, **options):
        stores = list(ExternalStore.objects.order_by("code").values_list("pk", "code"))
        failed = []
        rewritten = 0
        for index, (pk, code) in enumerate(stores, start=1):
            try:
                count = store_secrets_rotate(store_id=pk)
            except StoreSecretsUnreadable as exc:
                failed.append(code)
                self.stderr.write(f"[{index}/{len(stores)}] {exc}")
                continue
            rewritten += count
            self.stdout.write(f"[{index}/{len(stores)}] {code}: {count} secrets re-encrypted")
        self.stdout.write(f"{len(stores) - len(failed)} of {len(stores)} stores re-encrypted, "
                          f"{rewritten} secrets in all")
        if failed:
            raise CommandError(f"{len(failed)} stores could not be re-encrypted (left as they were): "
                               f"{', '.join(failed)}")
