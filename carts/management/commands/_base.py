"""Shared bits of the carts commands: find the store, turn refusals into a
non-zero exit with the reason."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from carts.connectors.base import ConnectorError
from carts.models import ExternalStore
from posinv.exceptions import DomainError


class StoreCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("store", help="the store's code")

    def store(self, code: str) -> ExternalStore:
        store = ExternalStore.objects.filter(code=code).first()
        if store is None:
            known = ", ".join(ExternalStore.objects.values_list("code", flat=True)) or "none"
            raise CommandError(f"no store {code!r} (known: {known})")
        return store

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (DomainError, ConnectorError) as exc:
            raise CommandError(str(exc)) from exc
