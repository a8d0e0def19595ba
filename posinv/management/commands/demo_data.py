"""`manage.py demo_data`: demo master data and stock for `make run`.

Idempotent: locations and price groups are matched by code, articles go
through the article file import (updated in place), stock arrives as ledger
receipts under fixed idempotency keys (a second run posts nothing), and the
demo admin is created, with its password printed, only the first time.
Then every app's `demo_loaders` extension adds its own demo data."""

from __future__ import annotations

import secrets
from decimal import Decimal

import tablib
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.module_loading import import_string

from posinv.models import Location, PriceGroup, StockLevel
from posinv.plugins import extension_paths
from posinv.resources import ArticleResource
from posinv.services.barcodes import gtin_check_digit
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

LOCATIONS = [
    ("S1", "Main street store", Location.Kind.STORE, Location.NegativeStock.ALLOW),
    ("S2", "Station kiosk", Location.Kind.STORE, Location.NegativeStock.REFUSE),
    ("W1", "Central warehouse", Location.Kind.WAREHOUSE, Location.NegativeStock.REFUSE),
    ("CAB1", "Screw cabinet", Location.Kind.CABINET, Location.NegativeStock.ALLOW),
    ("WEB", "Web shop", Location.Kind.WEB, Location.NegativeStock.REFUSE),
]
PRICE_GROUPS = [("RETAIL", "Retail", "EUR"), ("WHOLESALE", "Wholesale", "EUR"), ("WEB", "Web shop", "EUR")]
# sku, name, unit, unit weight (g), category, retail price
ARTICLES = [
    ("SCR-4x40", "Wood screw 4x40 mm", "pcs", "3.2", "screws", "0.08"),
    ("SCR-5x60", "Wood screw 5x60 mm", "pcs", "6.1", "screws", "0.12"),
    ("NUT-M8", "Hex nut M8", "pcs", "5.0", "nuts", "0.05"),
    ("WSH-M8", "Washer M8", "pcs", "1.8", "nuts", "0.03"),
    ("BLT-M8x50", "Hex bolt M8x50", "pcs", "24.5", "bolts", "0.35"),
    ("GLV-L", "Work gloves, size L", "pair", "85", "safety", "4.95"),
    ("TAPE-50", "Duct tape 50 m", "roll", "320", "tape", "7.50"),
    ("GLUE-W", "Wood glue 250 ml", "bottle", "290", "glue", "5.25"),
    ("SAND-120", "Sandpaper P120", "sheet", "12", "abrasives", "0.60"),
    ("BRUSH-40", "Paint brush 40 mm", "pcs", "45", "paint", "2.40"),
    ("PAINT-W1", "Wall paint white 1 l", "can", "1400", "paint", "12.90"),
    ("CABLE-3", "Cable ties 300 mm (100)", "bag", "150", "electrical", "3.80"),
]
STOCK = {"S1": 40, "W1": 500, "CAB1": 250, "WEB": 20}


def demo_barcode(index: int) -> str:
    body = f"400638{index:06d}"
    return body + str(gtin_check_digit(body))


class Command(BaseCommand):
    help = "Load demo locations, articles, prices and stock (idempotent), a demo admin, and every app's demo data."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")

    def handle(self, *args, admin_username: str, **options):
        with transaction.atomic():
            for code, name, kind, negative in LOCATIONS:
                Location.objects.get_or_create(
                    code=code, defaults={"name": name, "kind": kind, "negative_stock": negative}
                )
            for code, name, currency in PRICE_GROUPS:
                PriceGroup.objects.get_or_create(code=code, defaults={"name": name, "currency": currency})
            self._articles()
        posted = self._stock()
        created_admin = self._admin(admin_username)
        loaders = extension_paths("demo_loaders")
        for loader_path in loaders:
            self.stdout.write(f"demo loader {loader_path} ...")
            try:
                import_string(loader_path)()
            except Exception as exc:
                raise CommandError(f"demo loader {loader_path} failed: {exc!r}") from exc
        self.stdout.write(
            f"demo data: {len(LOCATIONS)} locations, {len(ARTICLES)} articles, {posted} stock moves posted, "
            f"{len(loaders)} app loaders run"
        )
        if not created_admin:
            self.stdout.write(f"demo admin {admin_username!r} exists already (password unchanged)")

    def _articles(self) -> None:
        dataset = tablib.Dataset(
            headers=["sku", "name", "unit", "unit_weight_g", "category", "barcodes", "price:RETAIL", "price:WEB"]
        )
        for index, (sku, name, unit, weight, category, price) in enumerate(ARTICLES, 1):
            barcodes = demo_barcode(index)
            if unit == "pcs":
                barcodes += f"|{demo_barcode(100 + index)}*100"  # a box of 100
            web = (Decimal(price) * Decimal("1.05")).quantize(Decimal("0.01"))
            dataset.append([sku, name, unit, weight, category, barcodes, price, str(web)])
        result = ArticleResource().import_data(dataset, dry_run=False, use_transactions=False)
        if result.has_errors() or result.has_validation_errors():
            problems = [f"row {r.number}: {r.error_dict}" for r in result.invalid_rows]
            problems += [str(e.error) for e in result.base_errors]
            raise CommandError(f"demo articles refused: {'; '.join(problems)}")

    def _stock(self) -> int:
        moves = [
            MoveSpec(
                kind="receipt",
                idempotency_key=f"demo:receipt:{sku}:{location}",
                quantity=Decimal(quantity),
                sku=sku,
                location_code=location,
                reference="demo opening stock",
            )
            for sku, *_ in ARTICLES
            for location, quantity in STOCK.items()
        ]
        result = stock_moves_post(moves=moves, origin=StockOrigin(kind="system", code="demo_data"))
        StockLevel.objects.filter(location__code="S1", reorder_point__isnull=True).update(
            reorder_point=Decimal(15), order_up_to=Decimal(60)
        )
        return len(result.posted)

    def _admin(self, username: str) -> bool:
        users = get_user_model().objects
        if users.filter(username=username).exists():
            return False
        password = secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.WARNING(f"demo admin created: username {username!r}, password {password!r}"))
        self.stdout.write("(shown once; change it in the admin or with `manage.py changepassword`)")
        return True
