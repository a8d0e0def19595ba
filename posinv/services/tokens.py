"""API tokens for staff users and devices. A token is 32 random bytes shown
once; only its SHA-256 is stored, and lookup goes by that hash, so the
database never holds a usable secret and no comparison leaks it."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone

from posinv.models import ApiToken


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


def token_find(raw: str) -> ApiToken | None:
    """The token row matching `raw`, or None."""
    if not raw or len(raw) > 200:
        return None
    digest = token_hash(raw)
    token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
    if token is None or not hmac.compare_digest(token.key_hash, digest):
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        # Bounded write rate: a busy till must not update its token row per request.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_revoke(*, kind: str, subject: str) -> int:
    deleted, _ = ApiToken.objects.filter(kind=kind, subject=subject).delete()
    return deleted
