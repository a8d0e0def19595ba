"""PostgreSQL: `posinv_live_sale_write` also leaves to the general path a
sale that would take a level beyond the system's quantity bound
(posinv/bounds.py, docs/ledger.md "Bounds"), which the ledger refuses there
with a clear reason. The bound travels in the payload (`quantity_max`), so
it is defined once, in Python; a payload without it takes the general path.

The function is 0002's with two additions, applied to its text so the two
cannot drift apart silently (the replacements are asserted)."""

from importlib import import_module

from django.db import migrations

BASE = import_module("retail.migrations.0002_live_sale_write_function").LIVE_SALE_WRITE

_REPLACEMENTS = (
    (
        "    v_refused int;\n",
        "    v_refused int;\n    v_beyond int;\n    v_bound numeric := (p->>'quantity_max')::numeric;\n",
    ),
    (
        "    SELECT array_agg(b.after ORDER BY b.n), count(*) FILTER (WHERE b.delta < 0 AND b.after < 0),\n",
        "    SELECT array_agg(b.after ORDER BY b.n), count(*) FILTER (WHERE b.delta < 0 AND b.after < 0),\n"
        "           count(*) FILTER (WHERE abs(b.after) > v_bound AND abs(b.after) > abs(b.after - b.delta)),\n",
    ),
    ("      INTO l_after, v_refused, v_policy\n", "      INTO l_after, v_refused, v_beyond, v_policy\n"),
    (
        "    IF v_policy IS NULL OR (v_refused > 0 AND v_policy = 'refuse')\n",
        "    IF v_policy IS NULL OR (v_refused > 0 AND v_policy = 'refuse') OR v_bound IS NULL OR v_beyond > 0\n",
    ),
)


def _bounded(text: str) -> str:
    for old, new in _REPLACEMENTS:
        if text.count(old) != 1:
            raise RuntimeError(f"live sale function text changed; cannot apply the bound at {old.strip()!r}")
        text = text.replace(old, new)
    return text


LIVE_SALE_WRITE_BOUNDED = _bounded(BASE)


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LIVE_SALE_WRITE_BOUNDED, params=None)


def restore_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BASE, params=None)


class Migration(migrations.Migration):
    dependencies = [("retail", "0002_live_sale_write_function")]

    operations = [migrations.RunPython(create_function, restore_function)]
