"""Create the role groups (cashier, stock clerk, purchaser, manager) with
their permissions (backoffice/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create
    # them now so the groups can reference them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    from backoffice.roles import roles_sync

    roles_sync(apps=apps)


def drop_roles(apps, schema_editor):
    from backoffice.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("pos", "0001_initial"),
        ("posinv", "0001_initial"),
        # The roles name retail's permissions (0004 re-syncs existing databases).
        ("retail", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
