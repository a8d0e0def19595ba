"""The live point of sale and multi-store operations.

`ScaleLayout` says how an in-store scale label (EAN-13 with prefix 20-29)
is read. `LiveSale` is the idempotency record of one `POST /sales/` call:
the key, a digest of the body and the first answer, so a retry gets that
answer again and moves nothing. `RfidRead` keeps what a gate read and what
was counted from it. `TransferOrder` moves goods between locations in steps
(shipped, then received in one or more `TransferReceipt`s), each step one
ledger batch. `StockMatrix` is the admin's articles-by-locations page."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from pos.models import CashRegister, Receipt
from posinv.models import Article, Location, StockLevel

QUANTITY = {"max_digits": 14, "decimal_places": 3}
MONEY = {"max_digits": 14, "decimal_places": 2}


class ScaleLayout(models.Model):
    """The meaning of one restricted-circulation prefix (20-29) on scale
    labels: `2D` + item code + optional verifier digit + value + check digit.
    The value is a weight in grams or a price in cents. The item code finds
    the article through its registered scale barcode: the same label with
    the value (and verifier) zeroed, e.g. 21 01234 00000 C."""

    class Content(models.TextChoices):
        WEIGHT = "weight", "Weight in grams"
        PRICE = "price", "Price in cents"

    prefix = models.CharField(
        max_length=2, unique=True, validators=[RegexValidator(r"^2[0-9]$", "a prefix from 20 to 29")]
    )
    content = models.CharField(max_length=6, choices=Content.choices, default=Content.WEIGHT)
    item_digits = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(4), MaxValueValidator(6)], help_text="digits of the item code"
    )
    has_verifier = models.BooleanField(
        "price/weight verifier digit",
        default=False,
        help_text="A GS1 verifier digit (section 7.9) sits between the item code and the value.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["prefix"]

    def __str__(self) -> str:
        return f"{self.prefix}: {self.pattern}"

    @property
    def value_digits(self) -> int:
        return 10 - self.item_digits - (1 if self.has_verifier else 0)

    @property
    def pattern(self) -> str:
        """The label layout as printed in the GS1 manuals, e.g. `2D IIIII WWWWW C`."""
        value = ("W" if self.content == self.Content.WEIGHT else "P") * self.value_digits
        verifier = "V " if self.has_verifier else ""
        return f"{self.prefix} {'I' * self.item_digits} {verifier}{value} C"

    def clean(self) -> None:
        if self.has_verifier and self.value_digits not in (4, 5):
            raise ValidationError(
                {"item_digits": f"with a verifier digit the value needs 4 or 5 digits, not {self.value_digits}"}
            )
        if self.value_digits < 3:
            raise ValidationError({"item_digits": "leaves fewer than 3 digits for the value"})


class LiveSale(models.Model):
    """One `POST /api/v1/sales/` call of a register, keyed by its
    Idempotency-Key. Holds a digest of the body (the same key with another
    body is refused) and the first answer (a retry gets it back), plus the
    price flags raised when the till's price differed from master data."""

    register = models.ForeignKey(CashRegister, on_delete=models.PROTECT, related_name="live_sales")
    idempotency_key = models.CharField(max_length=120)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical request body")
    receipt = models.OneToOneField(Receipt, on_delete=models.PROTECT, related_name="live_sale")
    response = models.JSONField(help_text="The first answer, returned again to a retry")
    flags = models.JSONField(default=list, blank=True)
    flagged = models.BooleanField(default=False, db_index=True)
    line_count = models.PositiveIntegerField(default=0)
    total = models.DecimalField(default=Decimal("0"), **MONEY)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replays = models.PositiveIntegerField(default=0, help_text="How often a retry got the first answer")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["register", "idempotency_key"], name="livesale_key_per_register")
        ]

    def __str__(self) -> str:
        return f"{self.register_id}:{self.idempotency_key}"


class RfidRead(models.Model):
    """One RFID read at a location: the EPCs a gate or handheld saw, what
    they decoded to, and the counts posted for the articles seen. `read_id`
    makes a re-sent read harmless."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="rfid_reads")
    read_id = models.CharField(max_length=80)
    reader = models.CharField(max_length=80, blank=True)
    read_at = models.DateTimeField()
    epc_count = models.PositiveIntegerField(default=0)
    decoded_count = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0, help_text="EPCs of other schemes or unknown GTINs")
    articles_counted = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, help_text="Counts per article and the EPCs not understood")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-read_at"]
        verbose_name = "RFID read"
        constraints = [models.UniqueConstraint(fields=["location", "read_id"], name="rfidread_once")]

    def __str__(self) -> str:
        return f"{self.location_id}:{self.read_id}"


def _placeholder_number() -> str:
    """A unique stand-in until the saved row's id gives the real number."""
    return f"tmp-{uuid.uuid4().hex[:16]}"


class TransferOrder(models.Model):
    """Goods moving from one location to another. Draft (editable, its
    quantities reserved at the source), shipped (stock left the source),
    partially received, received (stock arrived). Each step is one ledger
    batch; status changes are single-column updates that refuse an illegal
    transition."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SHIPPED = "shipped", "Shipped"
        PARTIAL = "partial", "Partially received"
        RECEIVED = "received", "Received"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=20, unique=True, default=_placeholder_number, editable=False)
    source = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="transfers_out")
    destination = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="transfers_in")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.DRAFT, db_index=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(source=models.F("destination")), name="transfer_distinct_locations"
            )
        ]

    def __str__(self) -> str:
        return self.number


class TransferLine(models.Model):
    """One article of a transfer order: the quantity to ship, and how much of
    it has been received so far."""

    order = models.ForeignKey(TransferOrder, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField()
    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(validators=[MinValueValidator(Decimal("0.001"))], **QUANTITY)
    received_qty = models.DecimalField(default=Decimal("0"), **QUANTITY)

    class Meta:
        ordering = ["order", "line_no"]
        constraints = [models.UniqueConstraint(fields=["order", "line_no"], name="transferline_no_per_order")]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.line_no} {self.article_id} x {self.quantity}"

    @property
    def outstanding(self) -> Decimal:
        return self.quantity - self.received_qty


class TransferReceipt(models.Model):
    """One arrival of goods of a shipped transfer (partial or complete): the
    quantities per line no. and the key that makes a re-sent receipt harmless."""

    order = models.ForeignKey(TransferOrder, on_delete=models.CASCADE, related_name="receipts")
    seq = models.PositiveIntegerField()
    key = models.CharField(max_length=120)
    quantities = models.JSONField(help_text="received quantity per line no., as strings")
    received_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["order", "seq"], name="transferreceipt_seq"),
            models.UniqueConstraint(fields=["order", "key"], name="transferreceipt_key"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.seq}"


class StockMatrix(StockLevel):
    """The central stock matrix page in the admin (articles by locations);
    a proxy so the page sits with the retail models and has its own permission."""

    class Meta:
        proxy = True
        verbose_name = "stock matrix"
        verbose_name_plural = "stock matrix"
