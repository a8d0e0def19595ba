"""Explicit extension points, declared by each app on its AppConfig (no
signals): `change_consumers` (called by the change-outbox dispatcher with
`changes=`), `schedule_providers` (called by the scheduler tick with
`now=`, yielding Due jobs), `demo_loaders` (called by `demo_data`) and
`token_issued` (called with `kind=, subject=, raw=` when the admin issues or
rotates an API token).
A setting of the same name in upper case overrides the discovered list."""
from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string

SETTINGS_OVERRIDES = {
    "change_consumers": "POSINV_CHANGE_CONSUMERS",
    "schedule_providers": "POSINV_SCHEDULE_PROVIDERS",
    "demo_loaders": "POSINV_DEMO_LOADERS",
    "token_issued": "POSINV_TOKEN_ISSUED_HOOKS",
}


def extension_paths(name: str) -> list[str]:
    override = getattr(settings, SETTINGS_OVERRIDES[name], None)
    if override is not None:
        return list(override)
    paths: list[str] = []
    for config in apps.get_app_configs():
        paths.extend(getattr(config, name, ()))
    return paths


def extensions(name: str) -> list:
    """The callables registered for extension point `name`, in app order."""
    return [import_string(path) for path in extension_paths(name)]
