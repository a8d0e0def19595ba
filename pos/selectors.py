"""Reads of the POS domain that other apps share."""
from __future__ import annotations

from django.db import connection

from pos.models import CashRegister
from posinv.db import columns_sql, row_instances
from posinv.models import Location, PriceGroup
from posinv.services.tokens import TokenJoin

# What a till's request needs of its register; the other fields load on first use.
_REGISTER_FIELDS = ("id", "location", "code", "name", "price_group", "currency", "active")
_LOCATION_FIELDS = ("id", "code", "name", "kind", "negative_stock")
_GROUP_FIELDS = ("id", "code", "name", "currency")


_REGISTER_PARTS = ((CashRegister, _REGISTER_FIELDS), (Location, _LOCATION_FIELDS), (PriceGroup, _GROUP_FIELDS))


def _register_columns() -> str:
    return (
        f"{columns_sql(CashRegister, _REGISTER_FIELDS, 'r')}, {columns_sql(Location, _LOCATION_FIELDS, 'l')},"
        f" {columns_sql(PriceGroup, _GROUP_FIELDS, 'g')}"
    )


def _register_joins(register_join: str, on: str = "") -> str:
    """`register_join` the register as `r` (`on` its condition), then its location `l` and price group `g`."""
    quote = connection.ops.quote_name
    return (
        f"{register_join} {quote(CashRegister._meta.db_table)} r {on}"
        f" LEFT JOIN {quote(Location._meta.db_table)} l ON l.id = r.location_id"
        f" LEFT JOIN {quote(PriceGroup._meta.db_table)} g ON g.id = r.price_group_id"
    )


def register_active(*, code: str) -> CashRegister | None:
    """The active register `code` with its location and price group loaded, or None. Called
    on every request of a till, so one query in plain SQL (posinv/db.py)."""
    sql = f"SELECT {_register_columns()} {_register_joins('FROM')} WHERE r.code = %s AND r.active"
    return _register_of(row_instances(sql, [code], _REGISTER_PARTS))


def _register_of(found: list | None) -> CashRegister | None:
    if found is None or found[0] is None:
        return None
    register, register.location, register.price_group = found
    return register


# A register token's register, loaded in the token's own query (posinv.services.tokens.token_find).
REGISTER_OF_TOKEN = TokenJoin(
    columns=_register_columns,
    joins=lambda: _register_joins("LEFT JOIN", on="ON t.kind = 'register' AND r.code = t.subject AND r.active"),
    parts=_REGISTER_PARTS,
)


def register_of_token(token) -> CashRegister | None:
    """The active register of a token found with REGISTER_OF_TOKEN, or None."""
    return _register_of(token.joined)
