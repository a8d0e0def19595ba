"""`manage.py reencrypt_register_tokens`: after a new key was put first in
POSINV_SECRET_KEY_ENCRYPTION, re-encrypt every pull register's stored token
under it (the old key may then be removed)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pos.services.transfer import register_token_copies_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt pull registers' stored tokens under the first configured key."

    def handle(self, *args, **options):
        done = register_token_copies_reencrypt(
            progress=lambda code, outcome: self.stderr.write(f"{code}: {outcome}")
        )
        self.stdout.write(f"{len(done['reencrypted'])} re-encrypted, {len(done['failed'])} failed")
        if done["failed"]:
            raise CommandError(
                f"no configured key opens the stored token of {', '.join(done['failed'])}; "
                "those were left unchanged: add the old key to POSINV_SECRET_KEY_ENCRYPTION or rotate their tokens"
            )
