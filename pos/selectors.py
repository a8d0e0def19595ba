"""Reads of the POS domain that other apps share."""
from __future__ import annotations

from django.db import connection

from pos.models import CashRegister
from posinv.db import columns_sql, row_instances
from posinv.models import Location, PriceGroup

# What a till's request needs of its register; the other fields load on first use.
_REGISTER_FIELDS = ("id", "location", "code", "name", "price_group", "currency", "active")
_LOCATION_FIELDS = ("id", "code", "name", "kind", "negative_stock")
_GROUP_FIELDS = ("id", "code", "name", "currency")


def register_active(*, code: str) -> CashRegister | None:
    """The active register `code` with its location and price group loaded, or None. Called
    on every request of a till, so one query in plain SQL (posinv/db.py)."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {columns_sql(CashRegister, _REGISTER_FIELDS, 'r')}, {columns_sql(Location, _LOCATION_FIELDS, 'l')},"
        f" {columns_sql(PriceGroup, _GROUP_FIELDS, 'g')}"
        f" FROM {quote(CashRegister._meta.db_table)} r JOIN {quote(Location._meta.db_table)} l ON l.id = r.location_id"
        f" LEFT JOIN {quote(PriceGroup._meta.db_table)} g ON g.id = r.price_group_id"
        " WHERE r.code = %s AND r.active"
    )
    found = row_instances(
        sql, [code], [(CashRegister, _REGISTER_FIELDS), (Location, _LOCATION_FIELDS), (PriceGroup, _GROUP_FIELDS)]
    )
    if found is None:
        return None
    register, register.location, register.price_group = found
    return register
