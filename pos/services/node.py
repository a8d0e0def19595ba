"""The register node's side: its own CashRegister row (settings fetched from
the main system, which stays the one place to configure), the push of
pending outbox entries, and the credential checks of its outbox API."""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ops.outbound import outbound_session
from pos.models import CashRegister, SyncEntry
from pos.services import entries as outbox
from posinv.exceptions import InvalidInput, Problem
from posinv.models import Location

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 120
MAX_BACKOFF_SECONDS = 300
# The settings are fetched again when older than this (and after a failure).
SETTINGS_MAX_AGE_SECONDS = 60
# Entries refused one by one, unnamed, with none taken in the run: the
# main system refuses everything (a proxy, a bug), not one entry.
SYSTEMIC_REFUSALS = 3
SETTINGS_FIELDS = ("name", "sync_type", "tables", "records_per_run", "interval_seconds", "currency")


class MainUnreachable(Exception):
    """The main system did not answer (down, network) or answered 5xx."""


def is_node() -> bool:
    return settings.POSINV_NODE == "register"


def nudge_credential(raw_token: str) -> str:
    """What the main system presents to ask a push register's node to send
    now ("Synchronize"): the SHA-256 of the register's token, all it keeps for
    a push register. It opens the push-now endpoint only, which does nothing
    but make the node send its own entries with its own token (ADR 0008)."""
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def node_credential_matches(presented: str) -> bool:
    """Is `presented` the register token itself? The till and the main system
    (pulling with its encrypted copy) both present it; the hash is refused."""
    token = settings.POSINV_REGISTER_TOKEN
    if not token or not presented:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8"))


def node_nudge_matches(presented: str) -> bool:
    """Is `presented` the hash of the register token (push-now only)?"""
    token = settings.POSINV_REGISTER_TOKEN
    if not token or not presented:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), nudge_credential(token).encode("utf-8"))


def _session(*, attempt: int | None = None) -> requests.Session:
    session = outbound_session(system=settings.POSINV_REGISTER_CODE, connector="main_system", attempt=attempt)
    session.headers["Authorization"] = f"Token {settings.POSINV_REGISTER_TOKEN}"
    return session


def node_register() -> CashRegister:
    """This node's register row. Created on first use from the main system's
    settings; if the main system is unreachable then, with defaults and a
    local placeholder location, so sales are never refused for that."""
    code = settings.POSINV_REGISTER_CODE
    register = CashRegister.objects.filter(code=code).first()
    if register is not None:
        return register
    try:
        return node_settings_fetch()
    except MainUnreachable:
        logger.warning("main system unreachable; register %s starts with default settings", code)
        location, _ = Location.objects.get_or_create(code=f"NODE-{code}"[:32], defaults={"name": f"Register {code}"})
        register, _ = CashRegister.objects.get_or_create(code=code, defaults={"location": location})
        return register


def node_settings_fetch() -> CashRegister:
    """Fetch this register's settings from the main system and store them
    locally (type, tables, records per run, interval, location)."""
    url = f"{settings.MAIN_URL}/api/v1/registers/{settings.POSINV_REGISTER_CODE}/settings/"
    try:
        response = _session().get(url, timeout=(CONNECT_TIMEOUT, 30))
    except requests.RequestException as exc:
        raise MainUnreachable(f"GET settings: {exc}") from exc
    if response.status_code >= 500:
        raise MainUnreachable(f"GET settings: HTTP {response.status_code}")
    if response.status_code != 200:
        raise InvalidInput([Problem(field="settings", reason=f"main answered {response.status_code}: "
                                    f"{response.text[:300]}", code="main_refused")])
    data = response.json()
    with transaction.atomic():
        location, _ = Location.objects.update_or_create(
            code=data["location"], defaults={"name": data.get("location_name") or data["location"]}
        )
        values = {key: data[key] for key in SETTINGS_FIELDS if key in data}
        register, created = CashRegister.objects.get_or_create(
            code=data["code"], defaults={"location": location, **values}
        )
        if not created:
            CashRegister.objects.filter(pk=register.pk).update(location=location, **values)
        CashRegister.objects.filter(pk=register.pk).update(settings_fetched_at=timezone.now())
        if "last_applied_entry_no" in data:
            watermark_heard(register=register, through=int(data["last_applied_entry_no"]))
        register.refresh_from_db()
    return register


def watermark_heard(*, register: CashRegister, through: int) -> int:
    """The main system says it holds this register's entries through entry
    no. `through` (its watermark: every answer carries it). Anything this
    node took as delivered after it is sent again: a main system restored
    from a backup gets back what it lost without waiting for a new sale.
    Returns how many entries were rewound."""
    rewound = outbox.outbox_requeue_after(register_id=register.pk, after=through)
    if rewound:
        logger.warning("register %s: the main system holds entries through %d only; %d entries are sent again",
                       register.code, through, rewound)
    CashRegister.objects.filter(pk=register.pk).update(last_applied_entry_no=through)
    return rewound


def _backoff(register: CashRegister, error: str) -> None:
    failures = register.failures_in_row + 1
    delay = min(2 ** min(failures, 12), MAX_BACKOFF_SECONDS)
    now = timezone.now()
    CashRegister.objects.filter(pk=register.pk).update(
        failures_in_row=failures,
        retry_after=now + timedelta(seconds=delay),
        last_error=error[:2000],
        last_error_at=now,
    )


def register_push(
    *,
    max_calls: int = 100,
    heartbeat: Callable[[], object] | None = None,
    progress: Callable[[dict], object] | None = None,
) -> dict:
    """Send pending outbox entries to the main system in entry-no. order, up
    to records-per-run per call, until none is left (or `max_calls`).

    What the main system has applied (its watermark) is marked delivered;
    anything it does not have is sent again (applying is idempotent). While
    the main system is unreachable the register backs off (retry_after).
    `heartbeat` is called before every call (a job renews its lease),
    `progress` after every call with the counts so far (a command prints them)."""
    register = node_register()
    stale = register.settings_fetched_at is None or (
        timezone.now() - register.settings_fetched_at > timedelta(seconds=SETTINGS_MAX_AGE_SECONDS)
    )
    # With nothing to send the run still asks the main system (its settings
    # answer carries its watermark), so a main restored from a backup gets
    # its lost entries back within one interval, not at the next sale.
    idle = not outbox.outbox_pending_count(register_id=register.pk)
    if stale or register.failures_in_row or idle:
        try:
            register = node_settings_fetch()
        except MainUnreachable as exc:
            _backoff(register, str(exc))
            raise
        except InvalidInput as exc:
            _backoff(register, str(exc))
            raise
    counts = {"calls": 0, "sent": 0, "applied": 0, "duplicate": 0, "failed": 0, "conflict": 0, "waiting": 0,
              "refused": 0}
    if register.sync_type == CashRegister.SyncType.PULL:
        # The main system fetches from this node; the run only refreshed the settings.
        CashRegister.objects.filter(pk=register.pk).update(
            last_attempt_at=timezone.now(), failures_in_row=0, retry_after=None
        )
        return counts
    url = f"{settings.MAIN_URL}/api/v1/registers/{register.code}/entries/"
    # Tries in a row of this push: 1 normally, n after n-1 failures (backoff).
    session = _session(attempt=register.failures_in_row + 1)
    CashRegister.objects.filter(pk=register.pk).update(last_attempt_at=timezone.now())
    limit = register.records_per_run
    # After a batch refused whole without naming its entries, its entries
    # go one by one (through this entry no.) to find the one at fault.
    singly_through = 0
    sent_this_run: set[int] = set()
    refused_numbers: set[int] = set()
    refusals: list[str] = []
    guessed: list[int] = []  # entries found at fault one by one (the answer named none)
    accepted = False
    for _ in range(max_calls):
        if heartbeat is not None:
            heartbeat()
        pending = SyncEntry.objects.filter(
            register=register, direction=SyncEntry.Direction.OUT, state=SyncEntry.State.PENDING
        ).order_by("entry_no")
        batch = list(pending[:limit])
        if batch and batch[0].entry_no <= singly_through:
            batch = batch[:1]
        if not batch:
            break
        body = {
            "entries": [
                {"entry_no": e.entry_no, "table": e.table, "record_id": e.record_id, "record": e.record}
                for e in batch
            ]
        }
        try:
            response = session.post(url, json=body, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.RequestException as exc:
            _backoff(register, f"POST entries: {exc}")
            raise MainUnreachable(str(exc)) from exc
        counts["calls"] += 1
        if response.status_code == 413:
            # Records per run was lowered on the main system since we fetched it.
            limit = max(1, int(response.json().get("limit", limit // 2 or 1)))
            CashRegister.objects.filter(pk=register.pk).update(records_per_run=limit)
            continue
        if response.status_code >= 500:
            _backoff(register, f"POST entries: HTTP {response.status_code}")
            raise MainUnreachable(f"HTTP {response.status_code}")
        if response.status_code == 429:
            _backoff(register, "POST entries: HTTP 429 (the main system asks to slow down)")
            raise MainUnreachable("HTTP 429")
        if response.status_code in (401, 403, 404):
            # The channel itself is refused (token, register unknown or
            # inactive): no entry is at fault; back off and say so.
            message = f"POST entries: HTTP {response.status_code}: {response.text[:1500]}"
            _backoff(register, message)
            raise InvalidInput([Problem(field="entries", reason=message, code="main_refused")])
        if response.status_code not in (200, 409):
            # The batch was refused whole (400): keep the entries at fault
            # failed for a person and carry on with the others.
            refused = _refused_entries(batch, response)
            if refused and not _names_an_entry(response):
                guessed += list(refused)
                if len(guessed) >= SYSTEMIC_REFUSALS and not accepted:
                    # Every entry refused and none taken, none named: the main
                    # system refuses the channel, not an entry. Put them back.
                    outbox.outbox_mark_refused(register_id=register.pk, refusals=refused)
                    outbox_retry_failed(register_id=register.pk, entry_ids=None, entry_nos=guessed)
                    message = f"POST entries: every batch refused: HTTP {response.status_code}: {response.text[:1500]}"
                    _backoff(register, message)
                    raise InvalidInput([Problem(field="entries", reason=message, code="main_refused")])
            if refused:
                outbox.outbox_mark_refused(register_id=register.pk, refusals=refused)
                refused_numbers.update(refused)
                counts["refused"] += len(refused)
                refusals += [f"entry {no}: {reason}" for no, reason in refused.items()]
                message = (f"the main system refused {counts['refused']} entries (kept failed here: fix and Retry): "
                           + "; ".join(refusals[:3]))
                CashRegister.objects.filter(pk=register.pk).update(last_error=message[:2000],
                                                                   last_error_at=timezone.now())
            else:
                singly_through = batch[-1].entry_no
            continue
        accepted = True
        answer = response.json()
        through = int(answer["last_applied_entry_no"])
        outbox.outbox_mark_delivered(register_id=register.pk, through=through)
        # The main system lacks entries we took as delivered (restored from a
        # backup): send them again.
        outbox.outbox_requeue_after(register_id=register.pk, after=through)
        counts["sent"] += len(batch)
        for key in ("applied", "duplicate", "failed", "conflict", "waiting"):
            counts[key] += int(answer.get(key, 0))
        _note_main_failures(register, answer.get("failures") or [])
        problems = [conflict["reason"] for conflict in answer.get("conflicts") or []]
        if refusals:
            problems.insert(0, f"the main system refused {counts['refused']} entries (kept failed here: fix and "
                               "Retry): " + "; ".join(refusals[:3]))
        error = "; ".join(problems)[:2000]
        CashRegister.objects.filter(pk=register.pk).update(
            last_success_at=timezone.now(), failures_in_row=0, retry_after=None, last_error=error,
            last_applied_entry_no=through, **({"last_error_at": timezone.now()} if error else {}),
        )
        if progress is not None:
            progress({**counts, "last_applied_entry_no": through})
        already_sent = all(entry.entry_no in sent_this_run for entry in batch)
        sent_this_run.update(entry.entry_no for entry in batch)
        missing = answer.get("missing") or {}
        waits_for_refused = missing.get("from") in refused_numbers
        if through < batch[-1].entry_no and (not missing or already_sent or waits_for_refused):
            # Nothing more will be taken now (or the main system waits for
            # an entry this run cannot fill): try again next run.
            break
    if not counts["calls"]:
        # Nothing to send, and the main system answered (its settings, with
        # its watermark): the channel is well, say so (health green again
        # after an outage even while the till sells nothing).
        CashRegister.objects.filter(pk=register.pk).update(
            last_success_at=timezone.now(), failures_in_row=0, retry_after=None, last_error=""
        )
    return counts


def _refused_entries(batch: list[SyncEntry], response) -> dict[int, str]:
    """{entry no.: reason} for the entries a refused batch's answer names
    (`errors[].index`); a single entry refused whole is at fault whatever
    the answer says. Empty when the answer does not tell."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    refused: dict[int, str] = {}
    for error in errors if isinstance(errors, list) else []:
        index = error.get("index") if isinstance(error, dict) else None
        if isinstance(index, int) and 0 <= index < len(batch):
            reason = f"HTTP {response.status_code}: {error.get('field', '')}: {error.get('reason', '')}"
            refused[batch[index].entry_no] = refused.get(batch[index].entry_no, "") + reason
    if not refused and len(batch) == 1:
        refused[batch[0].entry_no] = f"HTTP {response.status_code}: {response.text[:1000]}"
    return refused


def _names_an_entry(response) -> bool:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(error, dict) and isinstance(error.get("index"), int) for error in errors)


def _note_main_failures(register: CashRegister, failures: list[dict]) -> None:
    """Entries the main system holds but could not apply (kept failed
    there, for a person on the main system): noted on the node's own copy."""
    for failure in failures:
        SyncEntry.objects.filter(
            register=register, direction=SyncEntry.Direction.OUT, entry_no=failure.get("entry_no")
        ).update(last_error=f"kept failed on the main system: {failure.get('field')}: {failure.get('reason')}"[:2000])


def outbox_retry_failed(*, register_id: int, entry_ids=None, entry_nos=None) -> int:
    """A person retries entries the main system refused whole (after it was
    fixed or upgraded): they are pending again and go with the next push."""
    failed = SyncEntry.objects.filter(register_id=register_id, direction=SyncEntry.Direction.OUT,
                                      state=SyncEntry.State.FAILED)
    if entry_ids is not None:
        failed = failed.filter(pk__in=list(entry_ids))
    if entry_nos is not None:
        failed = failed.filter(entry_no__in=list(entry_nos))
    return failed.update(state=SyncEntry.State.PENDING)


def outbox_page(*, after: int, limit: int) -> dict:
    """Outbox entries after entry no. `after` (pending or not: the main
    system decides what it has), for the main system's pull."""
    register = node_register()
    # `after` is the pulling main system's watermark, so a restored main
    # pulls again what it lost; the node's delivered marks follow its ack.
    limit = max(1, min(limit, register.records_per_run, 10000))
    rows = list(
        SyncEntry.objects.filter(register=register, direction=SyncEntry.Direction.OUT, entry_no__gt=after)
        .order_by("entry_no")[:limit]
        .values("entry_no", "table", "record_id", "record")
    )
    last = register.next_entry_no - 1
    return {"register": register.code, "entries": rows, "last_entry_no": last,
            "more": bool(rows) and rows[-1]["entry_no"] < last}


def outbox_ack(*, through: int) -> int:
    """The main system has applied everything up to `through`."""
    register = node_register()
    marked = outbox.outbox_mark_delivered(register_id=register.pk, through=through)
    outbox.outbox_requeue_after(register_id=register.pk, after=through)
    CashRegister.objects.filter(pk=register.pk).update(
        last_success_at=timezone.now(), last_applied_entry_no=through, last_error=""
    )
    return marked
