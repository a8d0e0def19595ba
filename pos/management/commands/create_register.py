"""`manage.py create_register CODE --location LOC --type push|pull`: a new
cash register and its token, printed once (provisioning from a script)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pos.models import ALL_TABLES
from pos.services.transfer import register_create
from posinv.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Create a cash register and print its API token (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--location", required=True, help="location code")
        parser.add_argument("--type", dest="sync_type", choices=["push", "pull"], default="push")
        parser.add_argument("--records-per-run", type=int, default=500, help="1 to 10000 (default 500)")
        parser.add_argument("--interval", type=int, default=60, help="seconds between runs (default 60)")
        parser.add_argument("--node-url", default="", help="the register node's base URL (needed for pull)")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--tables", default=",".join(ALL_TABLES), help=f"comma-separated subset of {','.join(ALL_TABLES)}"
        )

    def handle(self, *args, code, location, sync_type, records_per_run, interval, node_url, name, tables, **options):
        wanted = [table.strip() for table in tables.split(",") if table.strip()]
        unknown = [table for table in wanted if table not in ALL_TABLES]
        if unknown:
            raise CommandError(f"--tables: unknown table(s) {', '.join(unknown)}; choose from {', '.join(ALL_TABLES)}")
        try:
            register, token = register_create(
                code=code, location_code=location, sync_type=sync_type, records_per_run=records_per_run,
                interval_seconds=interval, node_url=node_url, name=name, tables=wanted,
            )
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"register {register.code} created at {register.location.code} ({register.sync_type}, "
            f"{register.records_per_run} records per run); its token follows, shown only this once:"
        )
        self.stdout.write(token)
