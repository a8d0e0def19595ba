"""Password authentication behind the failed-login throttle
(posinv/services/login_throttle.py). It replaces Django's ModelBackend in
AUTHENTICATION_BACKENDS, so the admin login and every other
`django.contrib.auth.authenticate()` call with a password go through it."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from posinv.services.login_throttle import login_failure_record, login_lockout_find, login_success_record
from posinv.services.shared_counters import client_address


class ThrottledModelBackend(ModelBackend):
    """ModelBackend that refuses a locked-out username or client address
    before checking the password, and counts failures and successes."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        # Without a request (a shell, Client.login) only the username counts.
        address = client_address(request) if request is not None else None
        if login_lockout_find(username=username, address=address) is not None:
            # PermissionDenied stops authenticate() at once: no other backend gets to check the password.
            raise PermissionDenied("Too many failed logins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(username=username, address=address)
        else:
            login_success_record(username=username)
        return user
