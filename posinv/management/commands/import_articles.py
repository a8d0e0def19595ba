"""`manage.py import_articles FILE [--apply-valid]`: the article file (CSV or
XLSX), streamed through the same resource as the admin import."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from posinv.exceptions import InvalidInput
from posinv.services.article_import import article_file_count_rows, articles_import_file


class Command(BaseCommand):
    help = "Import articles (sku, name, unit, unit_weight_g, category, barcodes, price:<GROUP>) from CSV or XLSX."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--apply-valid",
            action="store_true",
            help="apply the good rows even when some rows are refused (default: apply nothing then)",
        )
        parser.add_argument("--chunk-size", type=int, default=1000)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, file: Path, apply_valid: bool, chunk_size: int, no_progress: bool, **options):
        if not file.exists():
            raise CommandError(f"{file}: no such file")
        total = None if no_progress else article_file_count_rows(path=file)
        with tqdm(total=total, unit="rows", disable=no_progress, file=self.stderr._out) as bar:
            try:
                report = articles_import_file(
                    path=file, apply_valid=apply_valid, chunk_size=chunk_size, progress=bar.update
                )
            except InvalidInput as exc:
                raise CommandError(f"{file}: {exc}") from exc
        for error in report.errors:
            self.stderr.write(str(error))
        if report.error_rows > len(report.errors):
            self.stderr.write(f"... and more: {report.error_rows} rows refused in all")
        summary = f"{report.rows} rows: {report.new} new, {report.updated} updated, {report.error_rows} refused"
        if not report.applied:
            raise CommandError(f"{summary}. Nothing was imported (use --apply-valid to import the good rows).")
        self.stdout.write(self.style.SUCCESS(f"{summary}. Imported."))
