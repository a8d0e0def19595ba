"""The main system's side of the transfer: pulling from pull registers'
outboxes, "Synchronize" from the admin, and provisioning registers."""
from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import requests
from django.db import transaction
from django.utils import timezone

from ops.outbound import outbound_session
from pos.models import CashRegister, SyncEntry
from pos.services.apply import BatchResult, entries_receive
from pos.services.node import CONNECT_TIMEOUT, READ_TIMEOUT, MainUnreachable
from posinv.crypto import SecretUndecryptable, secret_decrypt, secret_encrypt, secrets_rotate
from posinv.exceptions import InvalidInput, Problem
from posinv.models import ApiToken, Location
from posinv.services.tokens import token_hash, token_issue

logger = logging.getLogger(__name__)


class NodeUnreachable(Exception):
    """A register node did not answer (down, network) or answered 5xx."""


def _record_error(register_id: int, message: str) -> None:
    CashRegister.objects.filter(pk=register_id).update(last_error=message[:2000], last_error_at=timezone.now())


def register_pull_token(*, register: CashRegister) -> str:
    """The raw token of a pull register, decrypted from its stored copy; only
    the pull client calls this. A missing, undecryptable or outdated copy is
    an InvalidInput naming the fix, also recorded as the register's last error."""
    token = ApiToken.objects.filter(kind=ApiToken.Kind.REGISTER, subject=register.code).first()
    problem = None
    if token is None or not register.pull_token_encrypted:
        problem = (f"register {register.code} has no stored token to pull with; rotate its token "
                   "(rotate_register_token or the register's admin action) and give the new one to the node")
    else:
        try:
            raw = secret_decrypt(stored=register.pull_token_encrypted)
        except SecretUndecryptable as exc:
            problem = (f"register {register.code}: the stored token cannot be decrypted ({exc}); check "
                       "POSINV_SECRET_KEY_ENCRYPTION / SECRET_KEY, or rotate the register's token")
        else:
            if not hmac.compare_digest(token_hash(raw), token.key_hash):
                # Issued by a path that does not keep the copy (token_issue called directly).
                problem = (f"register {register.code}: the stored token is not the current one; rotate it "
                           "with rotate_register_token or the register's admin action")
    if problem is not None:
        _record_error(register.pk, problem)
        raise InvalidInput([Problem(field="token", reason=problem, code="token_unavailable")])
    return raw


def _node_session(register: CashRegister) -> requests.Session:
    session = outbound_session(system=register.code, connector="register_node")
    if register.sync_type == CashRegister.SyncType.PULL:
        session.headers["Authorization"] = f"Token {register_pull_token(register=register)}"
        return session
    # A push register keeps no copy of its token: its hash opens the node's
    # push-now and nothing else (ADR 0008).
    token = ApiToken.objects.filter(kind=ApiToken.Kind.REGISTER, subject=register.code).first()
    if token is None:
        raise InvalidInput([Problem(field="token", reason=f"register {register.code} has no token; "
                                    "issue one with create_register or the admin")])
    session.headers["Authorization"] = f"Token {token.key_hash}"
    return session


def register_pull(
    *,
    register_id: int,
    max_calls: int = 100,
    heartbeat: Callable[[], object] | None = None,
    progress: Callable[[dict], object] | None = None,
) -> dict:
    """Fetch a pull register's outbox after our watermark, apply each page
    like a pushed batch, then acknowledge `through` the new watermark.
    `heartbeat` is called before every call (a job renews its lease),
    `progress` after every page with the counts so far."""
    register = CashRegister.objects.get(pk=register_id)
    if not register.node_url:
        raise InvalidInput([Problem(field="node_url", reason=f"register {register.code} has no node URL to pull from")])
    CashRegister.objects.filter(pk=register_id).update(last_attempt_at=timezone.now())
    session = _node_session(register)
    base = register.node_url.rstrip("/")
    counts = {"calls": 0, "received": 0, "applied": 0, "duplicate": 0, "failed": 0, "conflict": 0, "waiting": 0}
    for _ in range(max_calls):
        if heartbeat is not None:
            heartbeat()
        register.refresh_from_db(fields=["last_applied_entry_no", "records_per_run"])
        after = register.last_applied_entry_no
        try:
            response = session.get(
                f"{base}/api/v1/sync/outbox/",
                params={"after": after, "limit": register.records_per_run},
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            _record_error(register_id, f"GET outbox: {exc}")
            raise NodeUnreachable(str(exc)) from exc
        counts["calls"] += 1
        if response.status_code >= 500:
            _record_error(register_id, f"GET outbox: HTTP {response.status_code}")
            raise NodeUnreachable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            message = f"GET outbox: HTTP {response.status_code}: {response.text[:500]}"
            _record_error(register_id, message)
            raise InvalidInput([Problem(field="outbox", reason=message, code="node_refused")])
        page = response.json()
        entries = page.get("entries") or []
        if not entries:
            break
        try:
            result: BatchResult = entries_receive(register_id=register_id, entries=entries, keep_malformed=True)
        except InvalidInput as exc:
            _record_error(register_id, f"pulled batch refused: {exc}")
            raise
        counts["received"] += len(entries)
        for key, value in result.as_dict().items():
            if key in counts and isinstance(value, int):
                counts[key] += value
        try:
            ack = session.post(
                f"{base}/api/v1/sync/outbox/ack/",
                json={"through": result.last_applied_entry_no},
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            # Applied but not acknowledged: the next pull starts after our
            # watermark anyway, so nothing is fetched twice for long.
            _record_error(register_id, f"POST ack: {exc}")
            raise NodeUnreachable(str(exc)) from exc
        if ack.status_code != 200:
            _record_error(register_id, f"POST ack: HTTP {ack.status_code}: {ack.text[:500]}")
        if progress is not None:
            progress({**counts, "last_applied_entry_no": result.last_applied_entry_no})
        if result.last_applied_entry_no <= after or not page.get("more"):
            break
    return counts


def register_synchronize(*, register_id: int) -> str:
    """The admin's "Synchronize": a pull register is fetched now; a push
    register's node is asked to send now. Returns what was done."""
    register = CashRegister.objects.get(pk=register_id)
    if register.sync_type == CashRegister.SyncType.PULL:
        counts = register_pull(register_id=register_id)
        return (
            f"{register.code}: pulled {counts['received']} entries: {counts['applied']} applied, "
            f"{counts['duplicate']} duplicate, {counts['failed']} failed, {counts['waiting']} waiting"
        )
    if not register.node_url:
        raise InvalidInput([Problem(field="node_url", reason=f"register {register.code} is push type and has no "
                                    "node URL to ask; it sends on its own every interval")])
    try:
        response = _node_session(register).post(
            f"{register.node_url.rstrip('/')}/api/v1/sync/push-now/", timeout=(CONNECT_TIMEOUT, 30)
        )
    except requests.RequestException as exc:
        _record_error(register_id, f"POST push-now: {exc}")
        raise NodeUnreachable(str(exc)) from exc
    if response.status_code != 202:
        raise InvalidInput([Problem(field="node", reason=f"node answered {response.status_code}: "
                                    f"{response.text[:300]}", code="node_refused")])
    return f"{register.code}: the register node was asked to send now"


def register_create(
    *,
    code: str,
    location_code: str,
    sync_type: str = CashRegister.SyncType.PUSH,
    records_per_run: int = 500,
    interval_seconds: int = 60,
    node_url: str = "",
    name: str = "",
    tables: list[str] | None = None,
) -> tuple[CashRegister, str]:
    """Create a cash register and its token; returns (register, raw token),
    the only time the token is available."""
    problems = []
    location = Location.objects.filter(code=location_code).first()
    if location is None:
        problems.append(Problem(field="location", reason=f"unknown location {location_code!r}"))
    if CashRegister.objects.filter(code=code).exists():
        problems.append(Problem(field="code", reason=f"register {code!r} exists already"))
    if not code or len(code) > 32:
        problems.append(Problem(field="code", reason="required, at most 32 characters"))
    if sync_type not in CashRegister.SyncType.values:
        problems.append(Problem(field="type", reason="must be push or pull"))
    if not 1 <= records_per_run <= 10000:
        problems.append(Problem(field="records_per_run", reason="must be between 1 and 10000"))
    if interval_seconds < 1:
        problems.append(Problem(field="interval", reason="must be at least 1 second"))
    if sync_type == CashRegister.SyncType.PULL and not node_url:
        problems.append(Problem(field="node_url", reason="a pull register needs the node's base URL"))
    if problems:
        raise InvalidInput(problems)
    with transaction.atomic():
        register = CashRegister(
            code=code, name=name or f"Register {code}", location=location, sync_type=sync_type,
            records_per_run=records_per_run, interval_seconds=interval_seconds, node_url=node_url,
        )
        if tables is not None:
            register.tables = tables
        register.full_clean()
        register.save()
        token = _token_issue(register=register)
    return register, token


def _token_issue(*, register: CashRegister) -> str:
    """Issue the token (hashed in ApiToken) and, for a pull register, keep
    the encrypted copy the pull client needs; a push register keeps none."""
    raw = token_issue(kind=ApiToken.Kind.REGISTER, subject=register.code)
    register.pull_token_encrypted = register_token_copy_keep(code=register.code, raw=raw)
    return raw


def register_token_copy_keep(*, code: str, raw: str) -> str:
    """After a register token was issued (here, or in the token admin): a
    pull register keeps it encrypted, a push register keeps nothing. Returns
    the stored value ("" when none, or when no register has this code)."""
    register = CashRegister.objects.filter(code=code).only("sync_type").first()
    if register is None:
        return ""
    copy = secret_encrypt(plaintext=raw) if register.sync_type == CashRegister.SyncType.PULL else ""
    CashRegister.objects.filter(pk=register.pk).update(pull_token_encrypted=copy)
    return copy


def register_token_issued(*, kind: str, subject: str, raw: str) -> None:
    """`token_issued` extension: a register token issued outside this app (the
    token admin) refreshes the pull register's encrypted copy."""
    if kind == "register":
        register_token_copy_keep(code=subject, raw=raw)


@transaction.atomic
def register_token_rotate(*, register_id: int) -> str:
    """Issue a new token for the register (the old one stops working);
    returns it, the only time it is shown."""
    register = CashRegister.objects.select_for_update().get(pk=register_id)
    return _token_issue(register=register)


def register_token_copies_reencrypt(*, progress: Callable[[str, str], object] | None = None) -> dict[str, list[str]]:
    """Re-encrypt every pull register's token copy under the first configured
    key (after a new key was put first in POSINV_SECRET_KEY_ENCRYPTION).
    A copy no configured key opens is left as it is and named in "failed";
    `progress` gets (code, outcome) per register."""
    done: dict[str, list[str]] = {"reencrypted": [], "failed": []}
    for register in CashRegister.objects.exclude(pull_token_encrypted="").order_by("code").only(
            "code", "pull_token_encrypted"):
        try:
            copy = secrets_rotate(values={"token": register.pull_token_encrypted})["token"]
        except SecretUndecryptable:
            outcome = "failed"
        else:
            CashRegister.objects.filter(pk=register.pk).update(pull_token_encrypted=copy)
            outcome = "reencrypted"
        done[outcome].append(register.code)
        if progress is not None:
            progress(register.code, outcome)
    return done


def register_token_copy_prune(*, register_id: int) -> bool:
    """Drop the encrypted token copy of a register that is push type (after
    its type was changed in the admin); True when one was dropped."""
    return bool(CashRegister.objects.filter(pk=register_id, sync_type=CashRegister.SyncType.PUSH)
                .exclude(pull_token_encrypted="").update(pull_token_encrypted=""))


def entries_state_counts(*, register_id: int) -> dict[str, int]:
    from django.db.models import Count

    return dict(
        SyncEntry.objects.filter(register_id=register_id)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )


__all__ = ["MainUnreachable", "NodeUnreachable", "register_pull", "register_synchronize", "register_create"]
