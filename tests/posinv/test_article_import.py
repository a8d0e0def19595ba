"""The article file: CSV and XLSX through `import_articles`, the admin import
with preview and confirm, and the admin exports, each with a real file."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from openpyxl import Workbook, load_workbook

from posinv.models import Article, Barcode, Price, PriceGroup, StockLevel
from posinv.services.article_import import articles_import_file
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_barcode, make_location, valid_ean13

pytestmark = pytest.mark.django_db
HEADER = ["sku", "name", "unit", "unit_weight_g", "category", "barcodes", "price:RETAIL", "price:WHOLESALE"]
EAN_A = valid_ean13("400638133393")  # 4006381333931
EAN_B = valid_ean13("590123412345")
EAN_C = valid_ean13("871234567890")


@pytest.fixture
def groups(db):
    return (
        PriceGroup.objects.create(code="RETAIL", name="Retail"),
        PriceGroup.objects.create(code="WHOLESALE", name="Wholesale"),
    )


def write_csv(path: Path, rows: list[list], header=HEADER, delimiter=",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run_import(path: Path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_articles", str(path), "--no-progress", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_csv_import_creates_articles_with_barcodes_weights_and_prices(tmp_path, groups):
    path = write_csv(
        tmp_path / "articles.csv",
        [
            ["SCR-1", "Screw 4x40", "pcs", "3.2", "screws", f"{EAN_A}|{EAN_B}*100", "0.08", "0.05"],
            ["GLUE", "Wood glue", "bottle", "290", "glue", "", "5.25", ""],
        ],
    )

    out, err = run_import(path)

    assert out.strip() == "2 rows: 2 new, 0 updated, 0 refused. Imported."
    assert err == ""
    screw = Article.objects.get(sku="SCR-1")
    assert (screw.name, screw.unit, screw.unit_weight_g, screw.category) == (
        "Screw 4x40",
        "pcs",
        Decimal("3.2"),
        "screws",
    )
    assert sorted(screw.barcodes.values_list("code", "gtin", "pack_qty")) == [
        (EAN_A, "0" + EAN_A, Decimal("1")),
        (EAN_B, "0" + EAN_B, Decimal("100")),
    ]
    assert sorted(Price.objects.filter(article=screw).values_list("group__code", "amount", "valid_from")) == [
        ("RETAIL", Decimal("0.08"), date.today()),
        ("WHOLESALE", Decimal("0.05"), date.today()),
    ]
    glue = Article.objects.get(sku="GLUE")
    assert list(glue.prices.values_list("group__code", "amount")) == [("RETAIL", Decimal("5.25"))]
    assert not glue.barcodes.exists()
    assert not StockLevel.objects.exists()  # an article file never moves stock


def test_reimport_updates_in_place_and_replaces_barcodes_without_new_price_rows(tmp_path, groups):
    first = write_csv(tmp_path / "a.csv", [["SCR-1", "Screw", "pcs", "3.2", "", f"{EAN_A}|{EAN_B}", "0.08", ""]])
    run_import(first)
    second = write_csv(tmp_path / "b.csv", [["SCR-1", "Screw, zinc", "pcs", "3.4", "", EAN_A, "0.08", ""]])

    out, _ = run_import(second)

    assert out.strip() == "1 rows: 0 new, 1 updated, 0 refused. Imported."
    screw = Article.objects.get(sku="SCR-1")
    assert (screw.name, screw.unit_weight_g) == ("Screw, zinc", Decimal("3.4"))
    assert list(screw.barcodes.values_list("code", flat=True)) == [EAN_A]
    assert Price.objects.filter(article=screw).count() == 1


def test_semicolon_csv_with_decimal_commas_is_read(tmp_path, groups):
    path = write_csv(tmp_path / "eu.csv", [["NUT", "Nut M8", "pcs", "5,5", "", "", "0,05", ""]], delimiter=";")

    run_import(path)

    nut = Article.objects.get(sku="NUT")
    assert nut.unit_weight_g == Decimal("5.5")
    assert nut.prices.get().amount == Decimal("0.05")


def test_xlsx_import_reads_numeric_cells(tmp_path, groups):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append([1001, "Washer", "pcs", 1.8, "nuts", int(EAN_A), 0.03, None])
    sheet.append(["BOLT", "Bolt M8", "pcs", 24.5, "bolts", f"{EAN_C}*10", 0.35, 0.2])
    path = tmp_path / "articles.xlsx"
    workbook.save(path)

    out, _ = run_import(path)

    assert out.strip() == "2 rows: 2 new, 0 updated, 0 refused. Imported."
    washer = Article.objects.get(sku="1001")
    assert (washer.unit_weight_g, washer.barcodes.get().code) == (Decimal("1.8"), EAN_A)
    assert washer.prices.get().amount == Decimal("0.03")
    bolt = Article.objects.get(sku="BOLT")
    assert bolt.barcodes.get().pack_qty == Decimal("10")


def test_bad_rows_are_reported_with_row_column_and_reason_and_nothing_is_applied(tmp_path, groups):
    bad_check = EAN_A[:-1] + str((int(EAN_A[-1]) + 1) % 10)
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ["OK-1", "Fine", "pcs", "1", "", EAN_B, "1.00", ""],
            ["BAD-1", "Bad barcode", "pcs", "1", "", bad_check, "1.00", ""],
            ["BAD-2", "Bad weight", "pcs", "heavy", "", "", "1.00", ""],
            ["OK-1", "Repeated", "pcs", "1", "", "", "", ""],
            ["BAD-3", "", "pcs", "1", "", "", "-2", ""],
        ],
    )

    with pytest.raises(CommandError) as failed:
        run_import(path)

    assert str(failed.value) == (
        "5 rows: 1 new, 0 updated, 4 refused. Nothing was imported (use --apply-valid to import the good rows)."
    )
    assert not Article.objects.exists()
    assert not Barcode.objects.exists()
    assert not Price.objects.exists()


def test_error_lines_name_row_column_and_reason(tmp_path, groups):
    bad_check = EAN_A[:-1] + str((int(EAN_A[-1]) + 1) % 10)
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ["OK-1", "Fine", "pcs", "1", "", EAN_B, "1.00", ""],
            ["BAD-1", "Bad barcode", "pcs", "1", "", bad_check, "1.00", ""],
            ["BAD-2", "Bad weight", "pcs", "heavy", "", "", "1.00", ""],
            ["OK-1", "Repeated", "pcs", "1", "", "", "", ""],
            ["BAD-3", "", "pcs", "0", "", "", "-2", ""],
        ],
    )

    report = articles_import_file(path=path, chunk_size=2)  # errors across chunk boundaries

    assert [str(e) for e in report.errors] == [
        f"row 2, column barcodes: barcode '{bad_check}' has check digit {bad_check[-1]}, expected {EAN_A[-1]} (EAN-13)",
        "row 3, column unit_weight_g: 'heavy' is not a number",
        "row 4, column sku: SKU OK-1 is already in row 1 of this file",
        "row 5, column unit_weight_g: 0 must be at least 0.001",
        "row 5, column price:RETAIL: -2 must be at least 0",
        "row 5, column name: This field cannot be blank.",
    ]
    assert (report.rows, report.error_rows, report.applied) == (5, 4, False)
    assert not Article.objects.exists()


def test_apply_valid_imports_the_good_rows_only(tmp_path, groups):
    path = write_csv(
        tmp_path / "mixed.csv",
        [
            ["OK-1", "Fine", "pcs", "1", "", EAN_B, "1.00", ""],
            ["BAD-2", "Bad weight", "pcs", "heavy", "", EAN_C, "1.00", ""],
            ["OK-2", "Also fine", "kg", "", "", "", "", "2.50"],
        ],
    )

    out, err = run_import(path, "--apply-valid")

    assert out.strip() == "3 rows: 2 new, 0 updated, 1 refused. Imported."
    assert err.strip() == "row 2, column unit_weight_g: 'heavy' is not a number"
    assert sorted(Article.objects.values_list("sku", flat=True)) == ["OK-1", "OK-2"]
    assert list(Barcode.objects.values_list("code", flat=True)) == [EAN_B]


def test_barcode_of_another_article_is_refused(tmp_path, groups):
    owner = make_article(sku="OWNER")
    make_barcode(article=owner, code=EAN_A)
    path = write_csv(tmp_path / "steal.csv", [["THIEF", "Thief", "pcs", "1", "", EAN_A, "", ""]])

    report = articles_import_file(path=path)

    assert [str(e) for e in report.errors] == [f"row 1, column barcodes: barcode {EAN_A} belongs to article OWNER"]
    assert not Article.objects.filter(sku="THIEF").exists()
    assert Barcode.objects.get().article == owner


@pytest.mark.parametrize(
    "header, message",
    [
        (["name", "unit"], "the file has no sku column (columns: name, unit)"),
        (
            ["sku", "name", "price:EXPORT"],
            "unknown price group column price:EXPORT (known: price:RETAIL, price:WHOLESALE)",
        ),
        (["sku", "name", "colour"], "unknown column colour"),
    ],
)
def test_bad_header_is_refused_before_any_row(tmp_path, groups, header, message):
    path = write_csv(tmp_path / "h.csv", [["X"] * len(header)], header=header)

    with pytest.raises(CommandError) as failed:
        run_import(path)

    assert message in str(failed.value)
    assert not Article.objects.exists()


def test_unknown_file_type_and_missing_file_are_clear_errors(tmp_path, groups):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(CommandError, match=r"a.json: expected a .csv or .xlsx file"):
        run_import(tmp_path / "a.json")
    with pytest.raises(CommandError, match=r"nope.csv: no such file"):
        run_import(tmp_path / "nope.csv")


def test_large_file_is_streamed_in_bounded_memory(tmp_path, groups):
    """Peak Python allocations stay flat while the file grows 4x: rows are
    read and written chunk by chunk (the 100,000-row run is in bench/)."""

    def peak_for(rows: int) -> int:
        path = write_csv(
            tmp_path / f"big{rows}.csv",
            [[f"G-{rows}-{i}", f"Generated {i}", "pcs", "2.5", "gen", "", "1.99", ""] for i in range(rows)],
        )
        tracemalloc.start()
        report = articles_import_file(path=path, chunk_size=500)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert (report.rows, report.new, report.applied) == (rows, rows, True)
        return peak

    small, large = peak_for(1500), peak_for(6000)

    assert large < small * 1.6, (small, large)
    assert Article.objects.count() == 7500


# ----- the admin: import with preview, exports -----


def csv_upload(rows, header=HEADER) -> SimpleUploadedFile:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile("articles.csv", buffer.getvalue().encode(), content_type="text/csv")


def test_admin_import_previews_then_applies_on_confirm(admin_client, groups):
    upload = csv_upload([["SCR-1", "Screw", "pcs", "3.2", "", EAN_A, "0.08", ""]])

    preview = admin_client.post("/admin/posinv/article/import/", {"import_file": upload, "format": "0"})

    assert preview.status_code == 200
    rows = preview.context["result"].rows
    assert [(r.import_type, r.diff[0]) for r in rows] == [("new", '<ins style="background:#e6ffe6;">SCR-1</ins>')]
    assert not Article.objects.exists()  # the preview was rolled back
    confirm = preview.context["confirm_form"].initial

    done = admin_client.post("/admin/posinv/article/process_import/", confirm)

    assert done.status_code == 302
    screw = Article.objects.get(sku="SCR-1")
    assert screw.barcodes.get().code == EAN_A
    assert screw.prices.get().amount == Decimal("0.08")


def test_admin_import_with_errors_shows_them_and_offers_no_confirm(admin_client, groups):
    upload = csv_upload([["OK-1", "Fine", "pcs", "1", "", "", "", ""], ["BAD", "Bad", "pcs", "x", "", "", "", ""]])

    preview = admin_client.post("/admin/posinv/article/import/", {"import_file": upload, "format": "0"})

    result = preview.context["result"]
    assert [(row.number, row.error_dict) for row in result.invalid_rows] == [
        (2, {"unit_weight_g": ["'x' is not a number"]})
    ]
    assert "confirm_form" not in preview.context
    assert "&#x27;x&#x27; is not a number" in preview.content.decode()
    assert not Article.objects.exists()


def test_admin_exports_articles_as_csv_with_barcodes_and_prices(admin_client, groups, tmp_path):
    run_import(
        write_csv(
            tmp_path / "a.csv", [["SCR-1", "Screw", "pcs", "3.2", "screws", f"{EAN_A}|{EAN_B}*6", "0.08", "0.05"]]
        )
    )
    fields = [
        "sku",
        "name",
        "unit",
        "unit_weight_g",
        "category",
        "active",
        "barcodes",
        "price:RETAIL",
        "price:WHOLESALE",
    ]

    response = admin_client.post(
        "/admin/posinv/article/export/", {"format": "0", **{f"articleresource_{f}": "on" for f in fields}}
    )

    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines == [fields, ["SCR-1", "Screw", "pcs", "3.2", "screws", "1", f"{EAN_A}|{EAN_B}*6", "0.08", "0.05"]]


def test_admin_exports_stock_levels_as_xlsx(admin_client):
    make_article(sku="A-1", name="Apple")
    make_location(code="S1")
    stock_moves_post(
        moves=[MoveSpec(kind="receipt", idempotency_key="r1", quantity=Decimal("12.5"), sku="A-1", location_code="S1")],
        origin=StockOrigin(kind="user", code="clerk"),
    )
    fields = ["sku", "article_name", "location", "on_hand", "reorder_point"]

    response = admin_client.post(
        "/admin/posinv/stocklevel/export/", {"format": "1", **{f"stocklevelresource_{f}": "on" for f in fields}}
    )

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        ["sku", "name", "location", "on_hand", "reorder_point"],
        ["A-1", "Apple", "S1", "12.5", None],
    ]


def test_files_that_cannot_be_read_are_clear_errors_and_change_nothing(tmp_path, groups):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,name\nK-1,Käse\n".encode("latin-1"))
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a zip file")

    with pytest.raises(CommandError) as not_utf8:
        run_import(latin)
    with pytest.raises(CommandError) as not_xlsx:
        run_import(broken)

    assert str(not_utf8.value).endswith("file: latin.csv is not UTF-8 text; save it as CSV UTF-8")
    assert str(not_xlsx.value).endswith("file: broken.xlsx cannot be read: File is not a zip file")
    assert not Article.objects.exists()


def test_figures_beyond_the_systems_bound_are_refused_per_row(tmp_path, groups):
    """posinv/bounds.py: a price beyond the amount bound, a weight or a pack
    quantity beyond the quantity bound is a row error, not a failed import."""
    path = write_csv(
        tmp_path / "big.csv",
        [
            ["OK-1", "Fine", "pcs", "1", "", "", "1.00", ""],
            ["BIG-1", "Dear", "pcs", "1", "", "", "1000000000.00", ""],
            ["BIG-2", "Heavy", "pcs", "1000000000", "", "", "", ""],
            ["BIG-3", "Big pack", "pcs", "1", "", f"{EAN_B}*3000000000", "", ""],
        ],
    )

    report = articles_import_file(path=path, apply_valid=True)

    reasons = [str(e) for e in report.errors]
    assert reasons[0] == ("row 2, column price:RETAIL: 1000000000.00 must be between -999,999,999.99 and "
                          "999,999,999.99 (the system's amount bound)")
    assert reasons[1].startswith("row 3, column unit_weight_g: 1000000000 must be between -999,999,999.999")
    assert reasons[2].startswith("row 4, column barcodes: pack quantity 3000000000")
    assert "quantity bound" in reasons[2]
    assert list(Article.objects.values_list("sku", flat=True)) == ["OK-1"]
