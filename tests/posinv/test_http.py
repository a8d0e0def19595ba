"""The one Retry-After parser (posinv/http.py), used by every outbound caller."""
from __future__ import annotations

import pytest

from posinv.http import retry_after_seconds

NOW = 1_790_000_000.0  # Mon, 21 Sep 2026 14:13:20 GMT


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0),
    (" 7 ", 7.0),
    ("1.5", 1.5),
    ("0", 0.0),
    ("-3", 0.0),
    ("Mon, 21 Sep 2026 14:15:20 GMT", 120.0),
    ("Mon, 21 Sep 2026 14:10:00 GMT", 0.0),  # already passed: go now
])
def test_delta_seconds_and_http_dates_give_seconds_from_now(header, seconds):
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "Mon, 21 Sep 2026 14:15:20"])
def test_absent_or_unreadable_headers_give_none(header):
    assert retry_after_seconds(header, now=NOW) is None


def test_every_outbound_caller_uses_the_one_parser():
    """No app keeps a parser of its own (three copies once gave three answers)."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = []
    for path in root.glob("*/**/*.py"):
        if path.parts[len(root.parts)] in {"tests", ".venv", "bench"} or path.name == "http.py":
            continue
        text = path.read_text()
        if re.search(r"headers\.get\(\s*[\"']Retry-After[\"']", text) and "retry_after_seconds(" not in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
