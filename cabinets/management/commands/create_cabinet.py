"""`manage.py create_cabinet CODE --location LOC`: register a weighing
cabinet and print its device token (once; only its hash is stored)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cabinets.services.provisioning import cabinet_create
from posinv.exceptions import DomainError


class Command(BaseCommand):
    help = "Register a weighing cabinet at a location and print its device token (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("code", help="cabinet code, as in /api/v1/cabinets/{code}/readings/")
        parser.add_argument("--location", required=True, help="location code (created as a cabinet location if new)")
        parser.add_argument("--name", default="")
        parser.add_argument("--pull-url", default="", help="vendor readings endpoint (omit for a push-only cabinet)")
        parser.add_argument("--api-key", default="", help="vendor API key for --pull-url")
        parser.add_argument("--interval", type=int, default=600, help="seconds between readings/pulls (default 600)")

    def handle(self, *args, code, location, name, pull_url, api_key, interval, **options):
        try:
            cabinet, token = cabinet_create(
                code=code, location_code=location, name=name, pull_url=pull_url, pull_api_key=api_key,
                interval_seconds=interval,
            )
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        mode = f"pulled from {cabinet.pull_url}" if cabinet.pull_url else "pushes its readings"
        self.stdout.write(
            f"cabinet {cabinet.code} at location {cabinet.location.code}: {mode}, every {cabinet.interval_seconds} s"
        )
        self.stdout.write(f"device token: {token}")
        self.stdout.write("(shown once; send it as 'Authorization: Token <token>')")
