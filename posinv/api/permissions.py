"""Who may call what: staff users, or one device on its own URL only."""
from __future__ import annotations

from rest_framework.permissions import BasePermission

from posinv.api.auth import DevicePrincipal


class IsStaffUser(BasePermission):
    message = "Staff users only."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


def device_of_kind(request, kind: str) -> DevicePrincipal | None:
    user = request.user
    return user if isinstance(user, DevicePrincipal) and user.kind == kind else None


class IsOwnDevice(BasePermission):
    """A device token of `view.device_kind` whose code equals the URL's
    `code`: another register's token on this URL gets 403."""

    message = "This token belongs to another device."

    def has_permission(self, request, view):
        device = device_of_kind(request, view.device_kind)
        if device is None:
            if isinstance(request.user, DevicePrincipal) or not request.user.is_authenticated:
                self.message = f"A {view.device_kind} token is required."
            return False
        return device.code == view.kwargs.get("code")
