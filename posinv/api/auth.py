"""`Authorization: Token <token>` for staff users and devices alike; the
token row says which. A device authenticates as a DevicePrincipal, which is
never staff, so staff-only endpoints refuse it."""
from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from posinv.api.throttling import throttled_token_find
from posinv.models import ApiToken


@dataclass(frozen=True)
class DevicePrincipal:
    """The request's user when a register, cabinet or store token was sent."""

    kind: str
    code: str
    is_authenticated: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    is_active: bool = True
    pk: None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}"


class TokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")
    # Rows a subclass loads with the token in its one query (posinv.services.tokens.TokenJoin).
    token_join = None

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected 'Token <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        # Counted per client address; 429 once over the limit (posinv/api/throttling.py).
        token = throttled_token_find(request, raw, self.token_join)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.kind == ApiToken.Kind.USER:
            if token.user is None or not token.user.is_active:
                raise exceptions.AuthenticationFailed("User inactive or deleted.")
            return token.user, token
        return DevicePrincipal(kind=token.kind, code=token.subject), token

    def authenticate_header(self, request):
        return "Token"
