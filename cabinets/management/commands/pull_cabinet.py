"""`manage.py pull_cabinet CODE` (or `--all`): pull readings from the vendor
now, as the scheduled job does (same lease, same JobRun record)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cabinets.jobs import cabinet_pull_job
from cabinets.models import WeighingCabinet
from cabinets.services.pull import PullError


class Command(BaseCommand):
    help = "Pull a cabinet's readings from its vendor endpoint now."

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", help="cabinet codes")
        parser.add_argument("--all", action="store_true", help="every active cabinet with a vendor endpoint")

    def handle(self, *args, codes, all, **options):
        if all:
            cabinets = list(WeighingCabinet.objects.filter(active=True).exclude(pull_url=""))
        elif codes:
            cabinets = list(WeighingCabinet.objects.filter(code__in=codes))
            unknown = set(codes) - {c.code for c in cabinets}
            if unknown:
                raise CommandError(f"no cabinet {', '.join(sorted(unknown))}")
        else:
            raise CommandError("name cabinet codes or pass --all")
        failed = []
        for cabinet in cabinets:
            try:
                self._pull(cabinet)
            except PullError as exc:
                self.stderr.write(f"{cabinet.code}: pull failed: {exc}")
                failed.append(cabinet.code)
        if failed:
            raise CommandError(f"pull failed for {', '.join(failed)}")

    def _pull(self, cabinet: WeighingCabinet) -> None:
        if not cabinet.pull_url:
            raise PullError("no vendor endpoint; this cabinet pushes its readings")

        def progress(result):
            self.stdout.write(f"{cabinet.code}: page {result.pages}, {result.counts.get('received', 0)} readings")

        c = cabinet_pull_job(cabinet_id=cabinet.pk, progress=progress)
        if c is None:
            self.stdout.write(f"{cabinet.code}: inactive, or another worker is pulling it right now; skipped")
            return
        self.stdout.write(
            f"{cabinet.code}: {c.get('received', 0)} readings in {c['pages']} page(s): "
            f"{c.get('posted', 0)} posted, {c.get('unchanged', 0)} unchanged, {c.get('held', 0)} held, "
            f"{c.get('duplicate', 0)} duplicate, {c.get('rejected', 0)} rejected"
        )
