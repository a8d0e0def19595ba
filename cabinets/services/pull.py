"""Pulling readings from a cabinet vendor's endpoint.

The vendor answers `GET <pull_url>?since=<ISO time>&limit=N[&cursor=C]`
(header `Authorization: Bearer <key>`) with
`{"readings": [...same shape as a push...], "next_cursor": "..." | null}`.
Each page is validated like a pushed batch and applied in its own
transaction; the cabinet's cursor is saved after the page commits: the
newest read time of the page's readings that were accepted (or rejected
for good, e.g. an unknown tray). A reading rejected for its clock
(`future_read_at`) never moves it: a cabinet whose clock jumped to next
year would otherwise push the cursor there, and every true reading after it
would never be fetched again. The next pull asks again from the cursor, so a
crash between pages repeats at most a page, which the readings'
idempotency turns into duplicates."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from django.utils import timezone

from cabinets.models import WeighingCabinet, WeightReading
from cabinets.services.parsing import readings_parse
from cabinets.services.readings import FUTURE_SKEW, NOT_FINAL, readings_apply
from ops.outbound import outbound_session
from posinv.exceptions import InvalidInput
from posinv.http import retry_after_seconds

logger = logging.getLogger(__name__)

PAGE_SIZE = 500
MAX_PAGES = 50


class PullError(Exception):
    """The vendor did not give a usable answer; what was applied before stays applied."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class PullResult:
    pages: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value


def cabinet_pull(
    *, cabinet: WeighingCabinet, max_pages: int = MAX_PAGES, page_size: int = PAGE_SIZE, progress=None
) -> PullResult:
    """Fetch the cabinet's new readings from its vendor and apply them page by
    page. Raises PullError (after recording it on the cabinet) when the vendor
    refuses, fails, is too slow or answers nonsense."""
    if not cabinet.pull_url:
        raise PullError(f"cabinet {cabinet.code} has no vendor endpoint (it pushes its readings)")
    result = PullResult()
    started = timezone.now()
    cursor: str | None = None
    since = cabinet.pull_cursor
    try:
        for _ in range(max_pages):
            page = _fetch(cabinet, since=since, cursor=cursor, limit=page_size)
            readings = readings_parse(body=page, max_readings=max(page_size, 1) * 2)
            applied = readings_apply(cabinet=cabinet, readings=readings, via=WeightReading.Via.PULL)
            result.pages += 1
            result.add(applied.counts())
            settled = [r.read_at for r in applied.results if r.status != "rejected" or r.code not in NOT_FINAL]
            if settled:
                newest = max(settled)
                if cabinet.pull_cursor is None or newest > cabinet.pull_cursor:
                    cabinet.pull_cursor = newest
                    WeighingCabinet.objects.filter(pk=cabinet.pk).update(pull_cursor=newest)
            if progress:
                progress(result)
            cursor = page.get("next_cursor")
            if not cursor:
                break
    except InvalidInput as exc:
        message = "malformed answer from the vendor: " + "; ".join(f"{p.field}: {p.reason}" for p in exc.problems)
        _record(cabinet, started, message)
        raise PullError(message) from exc
    except PullError as exc:
        blocked = started + timedelta(seconds=exc.retry_after) if exc.retry_after else None
        _record(cabinet, started, str(exc), blocked_until=blocked)
        raise
    _record(cabinet, started, "")
    return result


def _record(cabinet: WeighingCabinet, started: datetime, error: str, blocked_until: datetime | None = None) -> None:
    cabinet.last_pull_at = started
    cabinet.last_pull_error = error[:2000]
    cabinet.pull_blocked_until = blocked_until
    WeighingCabinet.objects.filter(pk=cabinet.pk).update(
        last_pull_at=started, last_pull_error=error[:2000], pull_blocked_until=blocked_until
    )


def _fetch(cabinet: WeighingCabinet, *, since: datetime | None, cursor: str | None, limit: int) -> dict:
    params: dict[str, str | int] = {"limit": limit}
    if since is not None:
        params["since"] = since.isoformat()
    if cursor:
        params["cursor"] = cursor
    headers = {"Accept": "application/json"}
    if cabinet.pull_api_key:
        headers["Authorization"] = f"Bearer {cabinet.pull_api_key}"
    try:
        with outbound_session(system=cabinet.code, connector="cabinet_vendor") as session:
            response = session.get(cabinet.pull_url, params=params, headers=headers,
                                   timeout=cabinet.pull_timeout_seconds)
    except requests.Timeout as exc:
        raise PullError(f"the vendor did not answer within {cabinet.pull_timeout_seconds:g} s") from exc
    except requests.RequestException as exc:
        raise PullError(f"could not reach the vendor: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code in (401, 403):
        raise PullError(f"the vendor refused the API key ({response.status_code})")
    if response.status_code == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise PullError(
            f"the vendor is rate limiting us (429); retry after {retry_after:g} s"
            if retry_after is not None
            else "the vendor is rate limiting us (429)",
            retry_after=retry_after,
        )
    if response.status_code != 200:
        raise PullError(f"the vendor answered {response.status_code}: {response.text[:200]}")
    try:
        data = response.json()
    except ValueError as exc:
        raise PullError(f"the vendor's answer is not JSON: {response.text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise PullError("the vendor's answer is not a JSON object")
    next_cursor = data.get("next_cursor")
    if next_cursor is not None and not isinstance(next_cursor, str):
        raise PullError("the vendor's next_cursor is not a string")
    return data


def cabinet_pull_request(*, cabinet: WeighingCabinet) -> None:
    """Ask for a pull of `cabinet` now (queued like a scheduled one, under the
    same key, so a pull already waiting is not queued twice). Without Redis it
    runs at once and a vendor failure raises PullError."""
    from posinv.queueing import enqueue

    if not cabinet.pull_url:
        raise PullError(f"cabinet {cabinet.code} has no vendor endpoint (it pushes its readings)")
    enqueue(
        "cabinets.jobs.cabinet_pull_job", unique_key=f"cabinet-pull:{cabinet.code}", clear="end", ttl=900,
        cabinet_id=cabinet.pk,
    )


def cabinet_pull_cursor_reset(*, cabinet: WeighingCabinet, now: datetime | None = None) -> datetime | None:
    """Set the pull cursor back to the newest pulled reading that was accepted
    and is not in our future (None: the next pull asks the vendor for
    everything it has; what was applied before comes back as duplicates).
    For a cursor a broken cabinet clock pushed ahead, or to fetch again."""
    now = now or timezone.now()
    newest = (
        WeightReading.objects.filter(cabinet=cabinet, via=WeightReading.Via.PULL, read_at__lte=now + FUTURE_SKEW)
        .exclude(outcome=WeightReading.Outcome.REJECTED)
        .order_by("-read_at").values_list("read_at", flat=True).first()
    )
    WeighingCabinet.objects.filter(pk=cabinet.pk).update(pull_cursor=newest)
    cabinet.pull_cursor = newest
    logger.info("pull cursor of cabinet %s reset to %s", cabinet.code, newest.isoformat() if newest else "the start")
    return newest
