"""Provisioning: registering a cabinet (with its device token) and its trays."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction

from cabinets.models import Tray, WeighingCabinet
from posinv.exceptions import Conflict, InvalidInput, Problem
from posinv.models import ApiToken, Article, Location
from posinv.services.tokens import token_issue

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
TRAY_COLUMNS = ("tray_id", "sku", "tare_g", "threshold")


def cabinet_create(
    *,
    code: str,
    location_code: str,
    name: str = "",
    pull_url: str = "",
    pull_api_key: str = "",
    interval_seconds: int = 600,
) -> tuple[WeighingCabinet, str]:
    """Register a cabinet at `location_code` (created as a cabinet location
    when missing) and issue its device token; returns the cabinet and the raw
    token, which is not stored and cannot be shown again."""
    problems = []
    if not CODE_RE.match(code or ""):
        problems.append(Problem(field="code", reason="1-32 letters, digits, '.', '_' or '-', starting alphanumeric"))
    if not CODE_RE.match(location_code or ""):
        problems.append(Problem(field="location", reason="1-32 letters, digits, '.', '_' or '-'"))
    if interval_seconds < 1:
        problems.append(Problem(field="interval", reason="at least 1 second"))
    if problems:
        raise InvalidInput(problems)
    with transaction.atomic():
        if WeighingCabinet.objects.filter(code=code).exists():
            raise Conflict([Problem(field="code", reason=f"cabinet {code} exists already", code="exists")])
        location, _ = Location.objects.get_or_create(
            code=location_code, defaults={"name": name or f"Cabinet {code}", "kind": Location.Kind.CABINET}
        )
        other = WeighingCabinet.objects.filter(location=location).first()
        if other is not None:
            raise Conflict(
                [Problem(field="location", reason=f"location {location_code} belongs to cabinet {other.code}")]
            )
        cabinet = WeighingCabinet.objects.create(
            code=code,
            name=name or code,
            location=location,
            pull_url=pull_url,
            pull_api_key=pull_api_key,
            interval_seconds=interval_seconds,
        )
        token = token_issue(kind=ApiToken.Kind.CABINET, subject=code)
    return cabinet, token


def cabinet_token_rotate(*, cabinet: WeighingCabinet) -> str:
    """Issue a new device token for the cabinet (the old one stops working); returns it once."""
    return token_issue(kind=ApiToken.Kind.CABINET, subject=cabinet.code)


@dataclass
class TrayImportResult:
    created: int = 0
    updated: int = 0
    problems: list[Problem] = field(default_factory=list)


def _decimal(value: str, *, name: str, row: int, problems: list[Problem], required: bool) -> Decimal | None:
    value = (value or "").strip()
    if not value:
        if required:
            problems.append(Problem(index=row, field=name, reason="required"))
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        problems.append(Problem(index=row, field=name, reason=f"{value!r} is not a number"))
        return None
    if not number.is_finite() or number < 0:
        problems.append(Problem(index=row, field=name, reason=f"{value} must be zero or more"))
        return None
    if number >= Decimal("1e8") or number != number.quantize(Decimal("0.001"), rounding="ROUND_DOWN"):
        problems.append(Problem(index=row, field=name, reason=f"{value}: at most 8 digits and 3 decimals"))
        return None
    return number


def trays_import(*, cabinet: WeighingCabinet, rows: Iterable[dict], progress=None) -> TrayImportResult:
    """Create or update trays from rows with `tray_id, sku, tare_g, threshold`
    (and optionally `capacity`). Every row is checked first; if any row is
    wrong, the result lists each problem by row number (1 = first data row)
    and nothing is written. Linking a tray to another article needs it empty."""
    rows = list(rows)
    result = TrayImportResult()
    problems = result.problems
    skus = {(row.get("sku") or "").strip() for row in rows}
    articles = {a.sku: a for a in Article.objects.filter(sku__in=skus)}
    existing = {t.tray_id: t for t in Tray.objects.filter(cabinet=cabinet)}
    seen: dict[str, int] = {}
    plan: list[tuple[str, Article, Decimal, Decimal | None, Decimal | None]] = []
    for number, row in enumerate(rows, start=1):
        before = len(problems)
        tray_id = (row.get("tray_id") or "").strip()
        sku = (row.get("sku") or "").strip()
        if not tray_id:
            problems.append(Problem(index=number, field="tray_id", reason="required"))
        elif len(tray_id) > 64:
            problems.append(Problem(index=number, field="tray_id", reason="at most 64 characters"))
        elif tray_id in seen:
            problems.append(Problem(index=number, field="tray_id", reason=f"{tray_id} is also on row {seen[tray_id]}"))
        else:
            seen[tray_id] = number
        article = articles.get(sku)
        if not sku:
            problems.append(Problem(index=number, field="sku", reason="required"))
        elif article is None:
            problems.append(Problem(index=number, field="sku", reason=f"unknown article {sku!r}"))
        elif article.unit_weight_g is None:
            problems.append(
                Problem(index=number, field="sku", reason=f"article {sku} has no unit weight; weights cannot count it")
            )
        tare = _decimal(row.get("tare_g"), name="tare_g", row=number, problems=problems, required=True)
        threshold = _decimal(row.get("threshold"), name="threshold", row=number, problems=problems, required=False)
        capacity = _decimal(row.get("capacity"), name="capacity", row=number, problems=problems, required=False)
        tray = existing.get(tray_id)
        if (
            tray is not None and article is not None and tray.article_id not in (None, article.pk)
            and tray.state == Tray.State.FILLED
        ):
            problems.append(
                Problem(
                    index=number, field="sku", reason=f"tray {tray_id} is filled with another article; empty it first"
                )
            )
        if len(problems) == before:
            plan.append((tray_id, article, tare, threshold, capacity))
        if progress:
            progress(number)
    if problems:
        return result
    new, changed = [], []
    for tray_id, article, tare, threshold, capacity in plan:
        tray = existing.get(tray_id) or Tray(cabinet=cabinet, tray_id=tray_id)
        tray.article, tray.tare_g, tray.threshold, tray.capacity = article, tare, threshold, capacity
        (changed if tray.pk else new).append(tray)
    with transaction.atomic():
        Tray.objects.bulk_create(new, batch_size=1000)
        Tray.objects.bulk_update(changed, ["article", "tare_g", "threshold", "capacity"], batch_size=500)
    result.created, result.updated = len(new), len(changed)
    return result
