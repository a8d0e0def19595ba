"""Backup and restore: a round trip that verifies the ledger after, in
process (SQLite or PostgreSQL) and with the real commands in child
processes on a PostgreSQL database of their own; refusals change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from backoffice.models import Supplier
from backoffice.services.backup import file_checksum
from pos.models import Receipt
from posinv.models import StockLevel, StockMove
from tests.backoffice.factories import make_register, make_supplier, sell, stock_receive
from tests.factories import make_article, make_location
from tests.support.processes import create_database, database_url, drop_database, manage, process_env


def ledger_state() -> dict:
    """Every level with the sum of its moves, and the table sizes."""
    sums = {
        (row["article_id"], row["location_id"]): row["total"]
        for row in StockMove.objects.values("article_id", "location_id").annotate(total=Sum("quantity"))
    }
    levels = {(lv.article_id, lv.location_id): lv.on_hand for lv in StockLevel.objects.all()}
    return {
        "levels": levels,
        "drift": {pair: (on_hand, sums.get(pair)) for pair, on_hand in levels.items() if on_hand != sums.get(pair, 0)},
        "moves": StockMove.objects.count(),
        "receipts": Receipt.objects.count(),
        "suppliers": sorted(Supplier.objects.values_list("code", flat=True)),
    }


def fill() -> None:
    store = make_location(code="S1")
    register = make_register(location=store, code="R1")
    for sku in ("A", "B", "C"):
        stock_receive(article=make_article(sku=sku), location=store, quantity="50")
    sell(register=register, at=datetime(2026, 5, 4, tzinfo=UTC), items=[("A", "3", "1.00"), ("B", "-2", "1.00")])
    make_supplier(code="SUP")


@pytest.mark.django_db(transaction=True)
def test_backup_then_restore_brings_back_the_same_ledger(tmp_path):
    fill()
    before = ledger_state()
    snapshot = tmp_path / "snap.bin"
    call_command("backup", "--output", str(snapshot))
    assert (tmp_path / "snap.bin.sha256").read_text() == f"{file_checksum(snapshot)}  snap.bin\n"

    # Changes after the snapshot: more sales and a new supplier.
    sell(register=Receipt.objects.first().register, at=datetime(2026, 5, 5, tzinfo=UTC), items=[("C", "7", "1")])
    make_supplier(code="LATE")
    assert ledger_state() != before

    call_command("restore", str(snapshot), "--yes")

    after = ledger_state()
    assert after == before
    assert after["drift"] == {} and after["moves"] == 5 and after["suppliers"] == ["SUP"]
    # Sequences came back too: the ledger still posts.
    stock_receive(article=make_article(sku="D"), location=StockLevel.objects.first().location, quantity="1")
    assert StockMove.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_tampered_snapshot_is_refused_and_nothing_changes(tmp_path):
    fill()
    snapshot = tmp_path / "snap.bin"
    call_command("backup", "--output", str(snapshot))
    make_supplier(code="LATE")
    with snapshot.open("ab") as handle:
        handle.write(b"x")

    with pytest.raises(CommandError, match="checksum mismatch"):
        call_command("restore", str(snapshot), "--yes")

    assert ledger_state()["suppliers"] == ["LATE", "SUP"]


@pytest.mark.django_db(transaction=True)
def test_refusals_name_the_problem(tmp_path):
    fill()
    existing = tmp_path / "there.bin"
    existing.write_text("keep me")
    with pytest.raises(CommandError, match="exists; choose a new file name"):
        call_command("backup", "--output", str(existing))
    assert existing.read_text() == "keep me"
    with pytest.raises(CommandError, match="does not exist"):
        call_command("backup", "--output", str(tmp_path / "no" / "such.bin"))
    with pytest.raises(CommandError, match="checksum file there.bin.sha256 is missing"):
        call_command("restore", str(existing), "--yes")
    (tmp_path / "there.bin.sha256").write_text(f"{file_checksum(existing)}  there.bin\n")
    kind = "a pg_dump custom-format" if connection.vendor == "postgresql" else "an SQLite database"
    with pytest.raises(CommandError, match=f"there.bin is not {kind} file"):
        call_command("restore", str(existing), "--yes")
    assert ledger_state()["moves"] == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_commands_round_trip_in_child_processes(tmp_path):
    """The shipped commands against a database of their own: demo data,
    backup, damage (a level off its moves, a table emptied), restore, and
    verify_ledger passes again with every row back."""
    import psycopg

    url = database_url("backup")
    env = process_env(database=url, redis=False)
    create_database(url)
    try:
        manage("migrate", "--noinput", env=env)
        manage("demo_data", env=env)
        manage("verify_ledger", env=env)
        with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
            counts_before = conn.execute(
                "SELECT (SELECT count(*) FROM posinv_stockmove), (SELECT count(*) FROM posinv_article),"
                " (SELECT sum(on_hand) FROM posinv_stocklevel)"
            ).fetchone()
        assert counts_before[0] > 0

        out = manage("backup", "--output", str(tmp_path / "demo.dump"), env=env).stdout
        assert "backup written" in out and "postgresql" in out

        with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
            conn.execute(
                "UPDATE posinv_stocklevel SET on_hand = on_hand + 5 WHERE id = (SELECT min(id) FROM posinv_stocklevel)"
            )
            conn.execute("DELETE FROM posinv_barcode")
        damaged = manage("verify_ledger", env=env, check=False)
        assert damaged.returncode == 1 and "drifting" in damaged.stderr

        restored = manage("restore", str(tmp_path / "demo.dump"), "--yes", env=env)
        assert "restored" in restored.stdout
        manage("verify_ledger", env=env)
        with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
            counts_after = conn.execute(
                "SELECT (SELECT count(*) FROM posinv_stockmove), (SELECT count(*) FROM posinv_article),"
                " (SELECT sum(on_hand) FROM posinv_stocklevel)"
            ).fetchone()
            barcodes = conn.execute("SELECT count(*) FROM posinv_barcode").fetchone()[0]
        assert counts_after == counts_before
        assert barcodes > 0
    finally:
        drop_database(url)
