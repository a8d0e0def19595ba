"""Moves are append-only in the database too: an UPDATE of a stock move is
refused by a trigger, whoever sends it (a shell, a script, a bug). Deleting
is already blocked for articles and locations with moves (PROTECT); rows
themselves may be deleted only by tests tearing a database down."""
from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION posinv_stockmove_no_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'stock moves are append-only: post a correcting move instead of updating move %', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER posinv_stockmove_append_only BEFORE UPDATE ON posinv_stockmove
    FOR EACH ROW EXECUTE FUNCTION posinv_stockmove_no_update();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS posinv_stockmove_append_only ON posinv_stockmove;
DROP FUNCTION IF EXISTS posinv_stockmove_no_update();
"""
SQLITE_UP = """
CREATE TRIGGER posinv_stockmove_append_only BEFORE UPDATE ON posinv_stockmove
BEGIN
    SELECT RAISE(ABORT, 'stock moves are append-only: post a correcting move instead of updating a move');
END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS posinv_stockmove_append_only;"


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("posinv", "0001_initial")]

    operations = [migrations.RunPython(up, down, elidable=False)]
