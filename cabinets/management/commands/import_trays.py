"""`manage.py import_trays CABINET FILE.csv`: create or update a cabinet's
trays from a CSV with the columns tray_id, sku, tare_g, threshold (and
optionally capacity). Every row is checked first; any error is reported per
row, the command exits non-zero, and no tray is written."""
from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cabinets.models import WeighingCabinet
from cabinets.services.provisioning import TRAY_COLUMNS, trays_import


class Command(BaseCommand):
    help = "Import trays (tray_id, sku, tare_g, threshold[, capacity]) of a cabinet from a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("cabinet", help="cabinet code")
        parser.add_argument("file", help="CSV file with a header row; '-' is not accepted")
        parser.add_argument("--delimiter", default=",")

    def handle(self, *args, cabinet, file, delimiter, **options):
        found = WeighingCabinet.objects.filter(code=cabinet).first()
        if found is None:
            raise CommandError(f"no cabinet {cabinet}")
        path = Path(file)
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle, delimiter=delimiter)
                header = [name.strip() for name in reader.fieldnames or []]
                missing = [column for column in TRAY_COLUMNS if column not in header]
                if missing:
                    raise CommandError(
                        f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(TRAY_COLUMNS)}"
                    )
                rows = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"{path} is not a UTF-8 CSV file: {exc}") from exc
        with tqdm(total=len(rows), desc="checking trays", unit="row", disable=len(rows) < 1000,
                  file=self.stderr) as bar:
            result = trays_import(cabinet=found, rows=rows, progress=lambda _: bar.update(1))
        if result.problems:
            for problem in result.problems:
                # Row numbers count data rows; +1 gives the line in the file (header is line 1).
                self.stderr.write(f"row {problem.index} (line {problem.index + 1}): {problem.field}: {problem.reason}")
            raise CommandError(f"{len(result.problems)} problem(s) in {path}; no tray was imported")
        self.stdout.write(f"cabinet {found.code}: {result.created} trays created, {result.updated} updated")
