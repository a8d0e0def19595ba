"""Article file import at scale: a generated 100,000-row CSV (two barcodes
and a price per row) through `import_articles`' service, streamed in
chunks. Prints rows/s and the peak resident memory of the process, beside
a 10,000-row run (each in its own process) as the baseline: bounded memory
means the peak hardly grows with 10x the rows.

    DATABASE_URL=postgres://... .venv/bin/python bench/articles_import.py
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_for_bench


def check_digit(body: str) -> str:
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def write_file(path: Path, rows: int, prefix: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "name", "unit", "unit_weight_g", "category", "barcodes", "price:RETAIL"])
        for i in range(rows):
            first, pack = f"2{prefix}{i:010d}", f"3{prefix}{i:010d}"
            writer.writerow(
                [
                    f"{prefix}-{i:06d}",
                    f"Generated article {i}",
                    "pcs",
                    f"{i % 500 + 1}.5",
                    f"cat-{i % 40}",
                    f"{first}{check_digit(first)}|{pack}{check_digit(pack)}*6",
                    f"{i % 90 + 1}.99",
                ]
            )


def one_run(rows: int, prefix: str) -> None:
    """Import one generated file in this (fresh) process and print its figures."""
    vendor = django_for_bench(f"import{prefix}")

    from posinv.models import Article, PriceGroup
    from posinv.services.article_import import articles_import_file

    PriceGroup.objects.create(code="RETAIL", name="Retail")
    path = Path(tempfile.mkdtemp(prefix="posinv-bench-import-")) / "articles.csv"
    write_file(path, rows, prefix)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    report = articles_import_file(path=path)
    seconds = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert report.applied and report.new == rows == Article.objects.count(), report
    size = path.stat().st_size / 1e6
    print(
        f"{vendor}: {rows} rows ({size:.1f} MB file) in {seconds:.1f} s = {rows / seconds:,.0f} rows/s; "
        f"peak resident {rss_peak:.0f} MB ({rss_peak - rss_before:+.0f} MB during the import)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run(args.one, args.prefix)
        return
    # Each size in its own process, so each peak resident size is its own.
    for label, rows, prefix in (("baseline", args.rows // 10, "1"), ("large", args.rows, "2")):
        print(f"{label}: ", end="", flush=True)
        subprocess.run([sys.executable, __file__, "--one", str(rows), "--prefix", prefix], check=True)


if __name__ == "__main__":
    main()
