"""API tokens for staff users and devices. A token is 32 random bytes shown
once; only its SHA-256 is stored, and lookup goes by that hash, so the
database never holds a usable secret and no comparison leaks it."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from posinv.db import columns_sql, row_instances
from posinv.models import ApiToken

_TOKEN_FIELDS = ("id", "kind", "subject", "user", "key_hash", "prefix", "created_at", "last_used_at")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@transaction.atomic
def token_issue(*, kind: str, subject: str, user=None) -> str:
    """Create (or rotate) the token of `subject`; returns the raw token, the
    only time it is available."""
    raw = secrets.token_urlsafe(32)
    ApiToken.objects.filter(kind=kind, subject=subject).delete()
    ApiToken.objects.create(kind=kind, subject=subject, user=user, key_hash=token_hash(raw), prefix=raw[:8])
    return raw


@dataclass(frozen=True)
class TokenJoin:
    """Rows a caller wants in the token's own lookup query (a till's register
    on every till request): `columns` is their select list, `joins` joins
    them to the token (alias `t`) and `parts` says which models and fields
    the columns are, in order (posinv/db.py's row_instances). Found, they
    arrive as `token.joined`, one instance or None per part."""

    columns: Callable[[], str]
    joins: Callable[[], str]
    parts: tuple[tuple[type[Model], tuple[str, ...]], ...]


def token_find(raw: str, *, join: TokenJoin | None = None) -> ApiToken | None:
    """The token row matching `raw`, or None; with `join`, its rows as `token.joined`."""
    if not raw or len(raw) > 200:
        return None
    digest = token_hash(raw)
    token = _token_with_user(digest, join)
    if token is None or not hmac.compare_digest(token.key_hash, digest):
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        # Bounded write rate: a busy till must not update its token row per request.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _token_with_user(digest: str, join: TokenJoin | None) -> ApiToken | None:
    """The token row of `digest` with its staff user (if any), and `join`'s
    rows, in one query. Every API request makes it, so in plain SQL
    (posinv/db.py)."""
    user_model = get_user_model()
    user_fields = tuple(field.name for field in user_model._meta.concrete_fields)
    quote = connection.ops.quote_name
    parts = [(ApiToken, _TOKEN_FIELDS), (user_model, user_fields), *(join.parts if join else ())]
    sql = (
        f"SELECT {columns_sql(ApiToken, _TOKEN_FIELDS, 't')}, {columns_sql(user_model, user_fields, 'u')}"
        f"{', ' + join.columns() if join else ''}"
        f" FROM {quote(ApiToken._meta.db_table)} t LEFT JOIN {quote(user_model._meta.db_table)} u ON u.id = t.user_id"
        f"{' ' + join.joins() if join else ''}"
        " WHERE t.key_hash = %s"
    )
    found = row_instances(sql, [digest], parts)
    if found is None:
        return None
    token, token.user, *token.joined = found
    return token


def token_revoke(*, kind: str, subject: str) -> int:
    deleted, _ = ApiToken.objects.filter(kind=kind, subject=subject).delete()
    return deleted
