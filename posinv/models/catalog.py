"""Master data: where stock lives, what is sold, and at what price."""
from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from posinv.bounds import AMOUNT_MAX


class Location(models.Model):
    """A place that holds stock: a store, a warehouse, a weighing cabinet or a web channel."""

    class Kind(models.TextChoices):
        STORE = "store", "Store"
        WAREHOUSE = "warehouse", "Warehouse"
        CABINET = "cabinet", "Weighing cabinet"
        WEB = "web", "Web"

    class NegativeStock(models.TextChoices):
        ALLOW = "allow", "Allow negative stock"
        REFUSE = "refuse", "Refuse moves that go below zero"

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STORE)
    negative_stock = models.CharField(
        max_length=8, choices=NegativeStock.choices, default=NegativeStock.ALLOW
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Article(models.Model):
    """Something we sell or keep: unique SKU, unit, and the unit weight from
    the article file (used by weighing cabinets to turn grams into pieces)."""

    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=16, default="pcs")
    unit_weight_g = models.DecimalField(
        "unit weight (g)",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    category = models.CharField(max_length=80, blank=True, db_index=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Barcode(models.Model):
    """A GS1 code printed on an article or on a pack of it. `gtin` is the
    code normalized to 14 digits, so UPC-A and EAN-13 forms meet."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="barcodes")
    code = models.CharField(max_length=14)
    gtin = models.CharField("GTIN-14", max_length=14, unique=True)
    pack_qty = models.DecimalField(
        "units per scan",
        max_digits=12,
        decimal_places=3,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.001"))],
    )

    class Meta:
        ordering = ["gtin"]

    def __str__(self) -> str:
        return self.code


class PriceGroup(models.Model):
    """A list of selling prices (retail, wholesale, a web shop's)."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    currency = models.CharField(max_length=3, default="EUR")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Price(models.Model):
    """An article's price in a group from a date on; the newest valid one applies,
    older rows are the price history."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="prices")
    group = models.ForeignKey(PriceGroup, on_delete=models.PROTECT, related_name="prices")
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(AMOUNT_MAX)]
    )
    currency = models.CharField(max_length=3, default="EUR")
    valid_from = models.DateField()

    class Meta:
        ordering = ["article", "group", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["article", "group", "valid_from"], name="price_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.article_id}@{self.group_id}: {self.amount} {self.currency}"
