"""The stock ledger: levels, the append-only moves behind them, and the
change outbox. Only posinv.services.ledger writes these (docs/ledger.md)."""
from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from posinv.bounds import QUANTITY_MAX

from .catalog import Article, Location

QUANTITY = {"max_digits": 14, "decimal_places": 3}
# A reorder target is a level to reach: within the system's bound (posinv/bounds.py).
TARGET_BOUNDS = [MinValueValidator(Decimal(0)), MaxValueValidator(QUANTITY_MAX)]


class Origin(models.TextChoices):
    """Who caused a stock change; with a code it names the exact source."""

    REGISTER = "register", "Cash register"
    CABINET = "cabinet", "Weighing cabinet"
    STORE = "store", "External store"
    USER = "user", "User"
    SYSTEM = "system", "System"


class StockLevel(models.Model):
    """Quantity on hand of one article at one location. `on_hand` equals the
    sum of the pair's moves; it changes only with an atomic update in the
    ledger service."""

    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="stock_levels")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock_levels")
    on_hand = models.DecimalField(default=Decimal("0"), **QUANTITY)
    reorder_point = models.DecimalField(null=True, blank=True, validators=TARGET_BOUNDS, **QUANTITY)
    order_up_to = models.DecimalField(null=True, blank=True, validators=TARGET_BOUNDS, **QUANTITY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["article", "location"]
        constraints = [
            models.UniqueConstraint(fields=["article", "location"], name="stocklevel_one_per_pair")
        ]

    def __str__(self) -> str:
        return f"{self.article_id}@{self.location_id}: {self.on_hand}"


class StockMove(models.Model):
    """One signed change of stock, stored as data. Append-only: corrections
    are new moves. The idempotency key makes a replay move nothing."""

    class Kind(models.TextChoices):
        SALE = "sale", "Sale"
        RETURN = "return", "Return"
        RECEIPT = "receipt", "Goods receipt"
        COUNT = "count", "Count"
        ADJUSTMENT = "adjustment", "Adjustment"
        TRANSFER = "transfer", "Transfer"
        ORDER = "order", "Web order"

    # No index of its own on article: move_pair_idx (article, location, id)
    # serves every lookup by article, and each index costs on the hot insert.
    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="moves", db_index=False)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="moves")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    quantity = models.DecimalField(**QUANTITY)
    counted = models.DecimalField(
        null=True, blank=True, help_text="For counts: the absolute quantity found.", **QUANTITY
    )
    balance_after = models.DecimalField(**QUANTITY)
    idempotency_key = models.CharField(max_length=200, unique=True)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    origin_code = models.CharField(max_length=120, blank=True)
    reference = models.CharField(max_length=120, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["article", "location", "id"], name="move_pair_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} of {self.article_id}@{self.location_id}"


class StockChange(models.Model):
    """Outbox row: this (article, location) pair changed, written in the same
    transaction as the moves. The dispatcher hands rows to the consumers
    (web stack, suggestions) and deletes them, so nothing is lost when Redis
    or a worker is down at commit time."""

    # The outbox is read in pk order and emptied: indexes on its foreign keys
    # would only slow down the ledger's insert.
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+", db_index=False)
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+", db_index=False)
    on_hand = models.DecimalField(**QUANTITY)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    origin_code = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class ChangeFailure(models.Model):
    """A change one consumer could not handle for one (article, location):
    recorded with its reason and skipped, so every other pair keeps flowing
    (posinv/services/changes.py). Removed when a later change of the pair is
    handled by that consumer; shown on Sync health and in the admin, which
    can hand the pair's current level to the consumers again."""

    consumer = models.CharField(max_length=200, help_text="The change consumer (dotted path) that failed.")
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    on_hand = models.DecimalField(help_text="On hand in the change that failed.", **QUANTITY)
    reason = models.TextField()
    failures = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()

    class Meta:
        verbose_name = "undelivered change"
        ordering = ["-last_failed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "article", "location"], name="changefailure_one_per_pair")
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: article {self.article_id} at location {self.location_id}"
