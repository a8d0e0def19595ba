"""`manage.py record_sales FILE`: record sales on a register node from a
JSON file (a list of receipts in the till API's shape, or one per line)."""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pos.api.serializers import TillReceiptIn
from pos.services.node import is_node, node_register
from pos.services.receipts import CustomerSpec, LineSpec, PaymentSpec, receipt_record
from posinv.exceptions import DomainError


def _read(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not JSON nor JSON lines: {exc}") from exc
    return data if isinstance(data, list) else [data]


class Command(BaseCommand):
    help = "Register node: record receipts from a JSON file; every refused receipt is reported."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file: Path, no_progress: bool, **options):
        if not is_node():
            raise CommandError("record_sales runs on a register node (POSINV_NODE=register)")
        if not file.exists():
            raise CommandError(f"{file}: no such file")
        receipts = _read(file)
        register = node_register()
        recorded = duplicates = 0
        refused: list[str] = []
        for index, item in enumerate(tqdm(receipts, unit="receipts", disable=no_progress, file=self.stderr._out)):
            data = TillReceiptIn(data=item)
            if not data.is_valid():
                refused.append(f"receipt {index}: {json.dumps(data.errors)}")
                continue
            v = data.validated_data
            try:
                result = receipt_record(
                    register=register, receipt_no=v["receipt_no"], created_at=v["created_at"],
                    process_no=v["process_no"], cashier=v["cashier"], total=v["total"], currency=v["currency"],
                    customer=CustomerSpec(**v["customer"]) if v["customer"] else None,
                    lines=[LineSpec(**line) for line in v["lines"]],
                    payments=[PaymentSpec(**payment) for payment in v["payments"]],
                )
            except DomainError as exc:
                refused.append(f"receipt {index} ({v['receipt_no']}): {exc}")
                continue
            duplicates += result.duplicate
            recorded += not result.duplicate
        self.stdout.write(f"{recorded} receipts recorded, {duplicates} already recorded, {len(refused)} refused")
        for line in refused:
            self.stderr.write(line)
        if refused:
            raise CommandError(f"{len(refused)} receipts refused")
