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


class StaffWithPermissions(IsStaffUser):
    """Staff who also hold the model permissions the view names for the
    request's method in `required_permissions` (e.g. {"POST":
    ["posinv.add_stockmove"]}), so a role group decides who may write
    through the API exactly as in the admin. Superusers hold every permission."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        method = "GET" if request.method in {"HEAD", "OPTIONS"} else request.method
        needed = getattr(view, "required_permissions", {}).get(method, ())
        if not request.user.has_perms(needed):
            self.message = f"Needs the permission(s): {', '.join(needed)}."
            return False
        return True
