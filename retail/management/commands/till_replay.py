"""A reference till client: replays a CSV of scans and sales against the
live point-of-sale API over HTTP, as a till vendor's integration would.

CSV columns (header required): kind, sale, code, sku, quantity, price,
discount, method, amount. `kind` is `scan` (GET /scan/{code}/), `line` (a
line of sale `sale`) or `payment` (a payment of sale `sale`). Lines and
payments of one sale are posted together, in the order the sale first
appears, with Idempotency-Key `<key prefix>:<sale>`: replaying the same
file again records nothing twice.

    manage.py till_replay till.csv --url http://127.0.0.1:8000 --token $TOKEN
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError

COLUMNS = ["kind", "sale", "code", "sku", "quantity", "price", "discount", "method", "amount"]
KINDS = {"scan", "line", "payment"}


@dataclass
class _Sale:
    ref: str
    lines: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)


def _read(path: Path) -> list[tuple[str, object]]:
    """The file as steps ("scan", code) and ("sale", _Sale), validated row by row."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CommandError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
        steps: list[tuple[str, object]] = []
        sales: dict[str, _Sale] = {}
        problems = []
        for number, row in enumerate(reader, start=2):
            kind = (row["kind"] or "").strip()
            if kind not in KINDS:
                problems.append(f"row {number}: kind {kind!r} is not one of scan, line, payment")
                continue
            if kind == "scan":
                if not row["code"].strip():
                    problems.append(f"row {number}: a scan needs a code")
                    continue
                steps.append(("scan", row["code"].strip()))
                continue
            ref = (row["sale"] or "").strip()
            if not ref:
                problems.append(f"row {number}: a {kind} needs a sale reference")
                continue
            if ref not in sales:
                sales[ref] = _Sale(ref=ref)
                steps.append(("sale", sales[ref]))
            if kind == "line":
                line = {"quantity": row["quantity"].strip(), "price": row["price"].strip()}
                for name in ("code", "sku", "discount"):
                    if row[name].strip():
                        line[name] = row[name].strip()
                sales[ref].lines.append(line)
            else:
                sales[ref].payments.append({"method": row["method"].strip(), "amount": row["amount"].strip()})
        if problems:
            raise CommandError(f"{path}: " + "; ".join(problems))
        return steps


def _errors(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors", [])
        return "; ".join(f"{e.get('field', '')}: {e['reason']}".lstrip(": ") for e in errors) or response.text[:200]
    except ValueError:
        return response.text[:200]


class Command(BaseCommand):
    help = "Replay a CSV of scans and sales against the point-of-sale API over HTTP (a reference till client)."

    def add_arguments(self, parser):
        parser.add_argument("csv", type=Path)
        parser.add_argument("--url", required=True, help="Base URL of the main system, e.g. http://127.0.0.1:8000")
        parser.add_argument(
            "--token",
            default=os.environ.get("POSINV_TILL_TOKEN", ""),
            help="Register token (default: $POSINV_TILL_TOKEN)",
        )
        parser.add_argument("--key-prefix", default="", help="Idempotency-Key prefix (default: the file name)")
        parser.add_argument("--timeout", type=float, default=10.0)
        parser.add_argument("--keep-going", action="store_true", help="Continue after a failed step")

    def handle(self, *args, **options):
        if not options["token"]:
            raise CommandError("a register token is required (--token or POSINV_TILL_TOKEN)")
        path: Path = options["csv"]
        steps = _read(path)
        base = options["url"].rstrip("/") + "/api/v1"
        prefix = options["key_prefix"] or path.stem
        session = requests.Session()
        session.headers["Authorization"] = f"Token {options['token']}"
        counts = {"scans": 0, "sales": 0, "replayed": 0, "flagged": 0, "failed": 0}
        for index, (kind, item) in enumerate(steps, start=1):
            where = f"[{index}/{len(steps)}]"
            try:
                if kind == "scan":
                    response = session.get(f"{base}/scan/{item}/", timeout=options["timeout"])
                    if response.status_code == 200:
                        body = response.json()
                        counts["scans"] += 1
                        self.stdout.write(
                            f"{where} scan {item}: {body['article']['sku']} x {body['quantity']} "
                            f"at {body['unit_price']} {body['currency']}, on hand {body['on_hand']}"
                        )
                        continue
                    message = f"scan {item}: {response.status_code} {_errors(response)}"
                else:
                    payload = {"lines": item.lines, "payments": item.payments}
                    response = session.post(
                        f"{base}/sales/",
                        json=payload,
                        timeout=options["timeout"],
                        headers={"Idempotency-Key": f"{prefix}:{item.ref}"},
                    )
                    if response.status_code == 201:
                        body = response.json()
                        replayed = response.headers.get("Idempotent-Replayed") == "true"
                        counts["sales"] += 1
                        counts["replayed"] += replayed
                        counts["flagged"] += bool(body["flags"])
                        on_hand = ", ".join(f"{line['sku']} {line['on_hand']}" for line in body["lines"])
                        note = " (replayed)" if replayed else ""
                        flags = f"; {len(body['flags'])} price flag(s)" if body["flags"] else ""
                        self.stdout.write(
                            f"{where} sale {item.ref}: receipt {body['receipt_no']} total {body['total']}{note}; "
                            f"on hand {on_hand}{flags}"
                        )
                        continue
                    message = f"sale {item.ref}: {response.status_code} {_errors(response)}"
            except requests.RequestException as exc:
                message = f"{kind} {getattr(item, 'ref', item)}: {exc.__class__.__name__}: {exc}"
            counts["failed"] += 1
            self.stderr.write(f"{where} FAILED {message}")
            if not options["keep_going"]:
                break
        summary = (
            f"{counts['scans']} scan(s), {counts['sales']} sale(s) ({counts['replayed']} replayed, "
            f"{counts['flagged']} flagged), {counts['failed']} failed"
        )
        if counts["failed"]:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
