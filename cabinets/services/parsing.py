"""Validation of a readings body, shared by the push API and the pull job
(a vendor page is checked exactly like a pushed batch). Written as a plain
loop rather than a nested DRF serializer: it runs for every reading of
every batch, and per-field serializer overhead would dominate the request."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime

from cabinets.services.readings import ReadingIn
from posinv.bounds import time_problem
from posinv.exceptions import InvalidInput, Problem

MAX_READINGS = 5000
TRAY_ID_MAX = 64
POSITION_MAX = 32
WEIGHT_LIMIT = Decimal("1e9")


def readings_parse(*, body, max_readings: int = MAX_READINGS) -> list[ReadingIn]:
    """Turn `{"readings": [...]}` into ReadingIn objects, or raise InvalidInput
    listing every malformed field (`readings[3].weight_g`): then nothing of
    the batch may be applied. Negative or absurd weights are well-formed
    here; the rules reject them per reading."""
    if not isinstance(body, dict):
        raise InvalidInput([Problem(field="readings", reason="expected a JSON object with a 'readings' list")])
    items = body.get("readings")
    if not isinstance(items, list):
        raise InvalidInput([Problem(field="readings", reason="required: a list of readings")])
    if len(items) > max_readings:
        raise InvalidInput(
            [Problem(field="readings", reason=f"at most {max_readings} readings per request, got {len(items)}")]
        )
    problems: list[Problem] = []
    parsed: list[ReadingIn] = []
    for index, item in enumerate(items):
        where = f"readings[{index}]"

        def bad(name: str, reason: str, where=where, index=index) -> None:
            problems.append(Problem(field=f"{where}.{name}" if name else where, reason=reason, index=index))

        if not isinstance(item, dict):
            bad("", "expected an object")
            continue
        tray_id = item.get("tray_id")
        if not isinstance(tray_id, str) or not tray_id.strip():
            bad("tray_id", "required: a non-empty string")
        elif len(tray_id) > TRAY_ID_MAX:
            bad("tray_id", f"at most {TRAY_ID_MAX} characters")
        raw_weight = item.get("weight_g")
        weight = None
        if raw_weight is None or isinstance(raw_weight, bool) or not isinstance(raw_weight, str | int | float):
            bad("weight_g", "required: a number of grams (a decimal string such as \"1234.5\")")
        else:
            try:
                weight = Decimal(str(raw_weight))
            except InvalidOperation:
                bad("weight_g", f"{raw_weight!r} is not a number")
            else:
                if not weight.is_finite():
                    bad("weight_g", "must be a finite number")
                    weight = None
                elif abs(weight) >= WEIGHT_LIMIT or weight != weight.quantize(Decimal("0.001"), rounding="ROUND_DOWN"):
                    bad("weight_g", "at most 9 digits before and 3 after the decimal point")
                    weight = None
        position = item.get("position") or ""
        if not isinstance(position, str):
            bad("position", "must be a string")
        elif len(position) > POSITION_MAX:
            bad("position", f"at most {POSITION_MAX} characters")
        raw_at = item.get("read_at")
        try:
            read_at = parse_datetime(raw_at) if isinstance(raw_at, str) else None
        except ValueError:
            read_at = None
        if read_at is None:
            bad("read_at", "required: an ISO 8601 date and time with its zone")
        elif read_at.tzinfo is None:
            bad("read_at", "must include a time zone (e.g. 2026-05-03T10:00:00Z)")
        elif time_problem(read_at):
            bad("read_at", time_problem(read_at))
        else:
            read_at = _in_utc(read_at)
        if len(problems) == 0:
            parsed.append(ReadingIn(tray_id=tray_id.strip(), weight_g=weight, read_at=read_at, position=position))
    if problems:
        raise InvalidInput(problems[:50])
    return parsed


def _in_utc(moment: datetime) -> datetime | None:
    """`moment` in UTC, or None when UTC takes it past the year 1 or 9999.
    Python accepts zone offsets up to 24 hours and PostgreSQL only up to 16,
    so a reading kept with its own offset could fail to store (a 500)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None
