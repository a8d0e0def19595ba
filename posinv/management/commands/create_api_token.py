"""`manage.py create_api_token USERNAME`: a personal API token, printed once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from posinv.models import ApiToken
from posinv.services.tokens import token_issue


class Command(BaseCommand):
    help = "Create (or rotate) the API token of a staff user and print it; it is not shown again."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not (user.is_active and user.is_staff):
            raise CommandError(f"user {username!r} is not an active staff user; the API is for staff")
        raw = token_issue(kind=ApiToken.Kind.USER, subject=user.get_username(), user=user)
        self.stdout.write(raw)
