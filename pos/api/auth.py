"""Authentication on a register node: the node has no token table of its
own for its register; it knows its token from POSINV_REGISTER_TOKEN. The
till presents the token; the main system presents the token's SHA-256,
which is all it stores (docs/registers.md)."""
from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from pos.services.node import is_node, node_credential_matches
from posinv.api.auth import DevicePrincipal


class NodeTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <register token or its SHA-256>` on a register node.
    Other tokens fall through to the next authenticator (staff tokens)."""

    def authenticate(self, request):
        if not is_node():
            return None
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].decode("latin-1").lower() not in ("token", "bearer"):
            return None
        try:
            presented = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        if node_credential_matches(presented):
            return DevicePrincipal(kind="register", code=settings.POSINV_REGISTER_CODE), None
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
