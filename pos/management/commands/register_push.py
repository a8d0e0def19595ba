"""`manage.py register_push`: on a register node, send pending entries now."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from pos.services.node import MainUnreachable, is_node, register_push
from posinv.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Register node: push pending synchronization entries to the main system now."

    def add_arguments(self, parser):
        parser.add_argument("--max-calls", type=int, default=100)

    def handle(self, *args, max_calls, **options):
        if not is_node():
            raise CommandError("register_push runs on a register node (POSINV_NODE=register)")
        try:
            counts = register_push(max_calls=max_calls, progress=self._progress)
        except MainUnreachable as exc:
            raise CommandError(f"main system unreachable: {exc}; the entries wait and are sent later") from exc
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(counts))

    def _progress(self, counts: dict) -> None:
        self.stderr.write(
            f"call {counts['calls']}: {counts['sent']} sent, {counts['applied']} applied, "
            f"{counts['duplicate']} duplicate, {counts['failed']} failed; main has everything through "
            f"entry {counts['last_applied_entry_no']}"
        )
