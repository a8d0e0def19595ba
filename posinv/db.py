"""Plain SQL for the few hot paths where the ORM's per-query cost counts
(compiling a queryset costs several times the database round trip it
makes; a live sale makes a handful of them per request, docs/retail.md).

Both helpers take a model and field names, so table and column names,
value preparation and the converters of the backend (a SQLite datetime
made aware, a JSON column decoded) stay Django's. The SQL they write is
the subset PostgreSQL and SQLite share (`ON CONFLICT ... DO NOTHING` and
`RETURNING` need SQLite 3.35)."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from django.db import connection
from django.db.models import Model


@lru_cache(maxsize=256)
def _columns(model: type[Model], field_names: tuple[str, ...], vendor: str):
    fields = [model._meta.get_field(name) for name in field_names]
    converters = []
    for field in fields:
        col = field.get_col(model._meta.db_table)
        converters.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
    return fields, [connection.ops.quote_name(field.column) for field in fields], converters


def columns_sql(model: type[Model], field_names: Sequence[str], alias: str = "") -> str:
    """The select list of `field_names` (optionally qualified by a table alias),
    in the order `instances_of` expects them."""
    _fields, columns, _ = _columns(model, tuple(field_names), connection.vendor)
    return ", ".join(f"{alias}.{column}" if alias else column for column in columns)


def instances_of(model: type[Model], field_names: Sequence[str], rows: Sequence[Sequence]) -> list:
    """Instances of `model` from raw rows holding `field_names` (the primary
    key among them), converted as the ORM would; other fields load on use."""
    names = tuple(field_names)
    fields, _, converters = _columns(model, names, connection.vendor)
    attnames = [field.attname for field in fields]
    instances = []
    for row in rows:
        values = []
        for value, (col, fns) in zip(row, converters, strict=True):
            for fn in fns:
                value = fn(value, col, connection)
            values.append(value)
        instances.append(model.from_db(connection.alias, attnames, values))
    return instances


def row_instances(sql: str, params: Sequence, parts: Sequence[tuple[type[Model], Sequence[str]]]) -> list | None:
    """Run `sql` for at most one row whose columns are each part's fields in
    turn (a join, listed with `columns_sql`); the row as one instance per
    part (None for a part whose first field, its key, is NULL, as a LEFT
    JOIN gives), or None when there is no row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    if row is None:
        return None
    found, start = [], 0
    for model, field_names in parts:
        values = row[start : start + len(field_names)]
        found.append(instances_of(model, field_names, [values])[0] if values[0] is not None else None)
        start += len(field_names)
    return found


def objects_insert(
    objects: Sequence[Model],
    field_names: Sequence[str],
    *,
    conflict_fields: Sequence[str] = (),
    returning: str | None = None,
) -> list:
    """Insert unsaved `objects` of one model (their `field_names`, a related
    object as its key) in one statement. With `conflict_fields`, objects that
    clash on that unique key are skipped. With `returning` (a field name),
    returns that field of each inserted row; otherwise an empty list."""
    if not objects:
        return []
    model = type(objects[0])
    names = tuple(field_names)
    fields, columns, _ = _columns(model, names, connection.vendor)
    quote = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) VALUES "
        + ", ".join([placeholders] * len(objects))
    )
    if conflict_fields:
        keys = ", ".join(quote(model._meta.get_field(name).column) for name in conflict_fields)
        sql += f" ON CONFLICT ({keys}) DO NOTHING"
    if returning:
        sql += f" RETURNING {quote(model._meta.get_field(returning).column)}"
    params = [
        field.get_db_prep_save(obj.serializable_value(field.name), connection) for obj in objects for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [found[0] for found in cursor.fetchall()] if returning else []
