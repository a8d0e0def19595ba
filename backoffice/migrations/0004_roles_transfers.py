"""Give the stock clerk (and so the manager) the retail transfer-order
permissions the API now requires (backoffice/roles.py)."""

from django.db import migrations


def resync_roles(apps, schema_editor):
    from backoffice.roles import roles_sync

    roles_sync(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0003_sales_rollup"),
        ("retail", "0001_initial"),
    ]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
