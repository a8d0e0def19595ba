"""The four staff roles and what each may see and change in the admin.
Groups are created by migration 0002 and can be re-synced with
`manage.py roles_sync` after new models appear. A role user also needs
`is_staff` to log in to the admin."""

from __future__ import annotations

CASHIER = "cashier"
STOCK_CLERK = "stock clerk"
PURCHASER = "purchaser"
MANAGER = "manager"


def _crud(app: str, model: str) -> list[str]:
    return [f"{app}.{action}_{model}" for action in ("view", "add", "change", "delete")]


_CASHIER = [
    "posinv.view_article",
    "pos.view_receipt",
    "pos.view_customer",
    "pos.add_customer",
    "pos.change_customer",
    "backoffice.view_customerhistory",
]
_STOCK_CLERK = [
    "posinv.view_article",
    "posinv.view_stocklevel",
    "posinv.view_stockmove",
    "backoffice.view_reorderlevel",
    "backoffice.change_reorderlevel",
    "backoffice.view_ordersuggestion",
    "backoffice.view_purchaseorder",
    "backoffice.receive_purchaseorder",
    "backoffice.view_goodsreceipt",
    # Transfers between locations move stock: clerks (and managers) only.
    "retail.view_transferorder",
    "retail.add_transferorder",
    "retail.change_transferorder",
]
_PURCHASER = [
    "posinv.view_article",
    "posinv.view_stocklevel",
    *_crud("backoffice", "supplier"),
    *_crud("backoffice", "supplierarticle"),
    "backoffice.view_purchaseorder",
    "backoffice.add_purchaseorder",
    "backoffice.change_purchaseorder",
    "backoffice.send_purchaseorder",
    "backoffice.view_ordersuggestion",
    "backoffice.change_ordersuggestion",
    "backoffice.view_reorderlevel",
    "backoffice.change_reorderlevel",
    "backoffice.view_reorderplan",
    "backoffice.view_goodsreceipt",
]
_MANAGER = sorted(
    {
        *_CASHIER,
        *_STOCK_CLERK,
        *_PURCHASER,
        "backoffice.view_reports",
        "backoffice.view_reorderplan",
        "backoffice.delete_purchaseorder",
        "pos.view_cashregister",
    }
)

ROLES: dict[str, list[str]] = {
    CASHIER: _CASHIER,
    STOCK_CLERK: _STOCK_CLERK,
    PURCHASER: _PURCHASER,
    MANAGER: _MANAGER,
}


def roles_sync(*, apps=None) -> dict[str, int]:
    """Create the role groups and give each exactly its permissions (with
    historical `apps` inside a migration). Returns permissions per group."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    counts = {}
    for name, perms in ROLES.items():
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            found = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if found is None:
                raise LookupError(f"role {name!r}: permission {perm} does not exist")
            wanted.append(found)
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.set(wanted)
        counts[name] = len(wanted)
    return counts
