"""Authentication on a register node: the node has no token table of its
own for its register; it knows its token from POSINV_REGISTER_TOKEN. The
till and the pulling main system present the token itself; the token's
SHA-256 opens push-now only (docs/registers.md, ADR 0008)."""
from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from pos.selectors import REGISTER_OF_TOKEN
from pos.services.node import is_node, node_credential_matches, node_nudge_matches
from posinv.api.auth import DevicePrincipal, TokenAuthentication

NUDGE = "register-nudge"


def _presented(request) -> str | None:
    header = authentication.get_authorization_header(request).split()
    if len(header) != 2 or header[0].decode("latin-1").lower() not in ("token", "bearer"):
        return None
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError as exc:
        raise exceptions.AuthenticationFailed("Invalid token.") from exc


class NodeTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <register token>` on a register node (the hash of
    the token is not accepted here). Other tokens fall through to the next
    authenticator (staff tokens)."""

    def authenticate(self, request):
        if not is_node():
            return None
        presented = _presented(request)
        if presented and node_credential_matches(presented):
            return DevicePrincipal(kind="register", code=settings.POSINV_REGISTER_CODE), None
        return None

    def authenticate_header(self, request):
        return "Token"


class NodeNudgeAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <SHA-256 of the register token>`: what the main
    system holds for a push register; it opens push-now and nothing else."""

    def authenticate(self, request):
        if not is_node():
            return None
        presented = _presented(request)
        if presented and node_nudge_matches(presented):
            return DevicePrincipal(kind=NUDGE, code=settings.POSINV_REGISTER_CODE), None
        return None

    def authenticate_header(self, request):
        return "Token"


class IsThisRegisterOrStaff(BasePermission):
    """This node's own register credential, or a staff user of the node."""

    message = "The register's token is required."

    def has_permission(self, request, view):
        user = request.user
        if isinstance(user, DevicePrincipal):
            if user.kind == "register" and user.code == settings.POSINV_REGISTER_CODE:
                return True
            self.message = "This token belongs to another device."
            return False
        return bool(user and user.is_authenticated and user.is_staff)


class MayAskToPush(IsThisRegisterOrStaff):
    """Push-now: the register credential, its hash (the main system's
    Synchronize of a push register), or a staff user of the node."""

    def has_permission(self, request, view):
        user = request.user
        if isinstance(user, DevicePrincipal) and user.kind == NUDGE:
            return user.code == settings.POSINV_REGISTER_CODE
        return super().has_permission(request, view)


class RegisterTokenAuthentication(TokenAuthentication):
    """The main system's token authentication, which also loads a register
    token's active register (location and price group too) in the token's
    own query: a till's scan or sale needs both, and this is the call a till
    waits for. `pos.selectors.register_of_token(request.auth)` reads it."""

    token_join = REGISTER_OF_TOKEN
