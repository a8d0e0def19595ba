"""The POS domain, the same on the main system and on a register node.

A `CashRegister` belongs to a location and says how its sales travel (push
or pull, which tables, how many records per run). Sales are `Receipt`s with
`ReceiptLine`s (negative quantity = return) and `PaymentLine`s, grouped in a
`PosProcess` (a till session). On a register node, recording a sale also
writes one `SyncEntry` per enabled table row (direction "out"); the main
system stores what it receives as entries of direction "in" and applies them
in entry-no. order (docs/registers.md)."""
from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models

from posinv.models import Article, Location, PriceGroup, StockMove

QUANTITY = {"max_digits": 14, "decimal_places": 3}
MONEY = {"max_digits": 14, "decimal_places": 2}


class SyncTable(models.TextChoices):
    """The tables that can take part in the transfer (record shapes in DESIGN.md)."""

    POS_PROCESS = "pos_process", "POS process"
    RECEIPT = "receipt", "Receipt"
    RECEIPT_LINE = "receipt_line", "Receipt line"
    PAYMENT_LINE = "payment_line", "Payment line"
    CUSTOMER = "customer", "Customer"
    STOCK_COUNT = "stock_count", "Stock count"


ALL_TABLES = [choice.value for choice in SyncTable]


def all_tables() -> list[str]:
    return list(ALL_TABLES)


def validate_tables(value) -> None:
    if not isinstance(value, list) or any(item not in ALL_TABLES for item in value):
        raise ValidationError(f"tables must be a list drawn from {', '.join(ALL_TABLES)}")
    if len(set(value)) != len(value):
        raise ValidationError("a table is listed twice")


class CashRegister(models.Model):
    """A till at a location, and how its sales reach the main system.

    On the main system this is the configuration (edited in the admin) plus
    the apply state; a register node keeps a copy of its own row, refreshed
    from the main system, plus its outbox counter. The register's API token
    lives hashed in posinv's ApiToken (kind "register", subject = code); a
    pull register also keeps it encrypted in `pull_token_encrypted`."""

    class SyncType(models.TextChoices):
        PUSH = "push", "Push (the register sends)"
        PULL = "pull", "Pull (the main system fetches)"

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="cash_registers")
    code = models.CharField("cash register code", max_length=32, unique=True)
    name = models.CharField(max_length=120, blank=True)
    sync_type = models.CharField("type", max_length=4, choices=SyncType.choices, default=SyncType.PUSH)
    tables = models.JSONField(
        default=all_tables,
        validators=[validate_tables],
        help_text="Tables that take part in the transfer; a disabled table produces no entries.",
    )
    records_per_run = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="At most this many entries travel per run (and per request).",
    )
    interval_seconds = models.PositiveIntegerField(
        "interval (seconds)", default=60, validators=[MinValueValidator(1)]
    )
    # A CharField with a URL validator rather than URLField: Django 5.2's
    # URLField form field warns about its default scheme on every form.
    node_url = models.CharField(
        "register node base URL",
        max_length=200,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Where the main system pulls from (pull), or asks for a push (Synchronize).",
    )
    price_group = models.ForeignKey(
        PriceGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="cash_registers"
    )
    currency = models.CharField(max_length=3, default="EUR")
    active = models.BooleanField(default=True)
    # Main system, pull registers only: the raw register token, encrypted at
    # rest (posinv.crypto, `enc:v1:...`), so the main system can present the
    # real token to the node. Written when the token is issued or rotated;
    # empty for push registers (ADR 0008).
    pull_token_encrypted = models.TextField(blank=True, editable=False)

    # Main system: entries applied (or kept failed) without a gap up to here.
    last_applied_entry_no = models.BigIntegerField(default=0)
    # Register node: the next outbox entry no. (gap-free, taken under a row lock).
    next_entry_no = models.BigIntegerField(default=1)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Register node: when the settings were last fetched from the main system.
    settings_fetched_at = models.DateTimeField(null=True, blank=True)
    # Register node: main unreachable; do not try before this (backoff).
    retry_after = models.DateTimeField(null=True, blank=True)
    failures_in_row = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})" if self.name else self.code

    def table_enabled(self, table: str) -> bool:
        return table in self.tables


class Customer(models.Model):
    """A customer captured on receipts (loyalty card, invoice address)."""

    customer_no = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    card_no = models.CharField(max_length=64, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer_no"]

    def __str__(self) -> str:
        return f"{self.customer_no} {self.name}".strip()


class PosProcess(models.Model):
    """A till session on one register (opened by a cashier, closed at shift end)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    register = models.ForeignKey(CashRegister, on_delete=models.PROTECT, related_name="processes")
    process_no = models.CharField("POS process no.", max_length=40)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    cashier = models.CharField(max_length=80, blank=True)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = "POS process"
        verbose_name_plural = "POS processes"
        constraints = [
            models.UniqueConstraint(fields=["register", "process_no"], name="posprocess_no_per_register")
        ]

    def __str__(self) -> str:
        return self.process_no


class Receipt(models.Model):
    """One sale (or return) on a register. Unique per register and receipt no.,
    so a re-sent receipt finds itself. `source` tells how it got here."""

    class Source(models.TextChoices):
        REGISTER = "register", "Recorded on this register node"
        SYNC = "sync", "Register synchronization"
        LIVE = "live", "Live point-of-sale API"

    register = models.ForeignKey(CashRegister, on_delete=models.PROTECT, related_name="receipts")
    receipt_no = models.CharField(max_length=40)
    process = models.ForeignKey(
        PosProcess, null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    total = models.DecimalField(default=Decimal("0"), **MONEY)
    currency = models.CharField(max_length=3, default="EUR")
    created_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.REGISTER)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["register", "receipt_no"], name="receipt_no_per_register")
        ]

    def __str__(self) -> str:
        return self.receipt_no


class ReceiptLine(models.Model):
    """One article line of a receipt. A negative quantity is a return. The
    article may be unknown here (a SKU not imported yet): the line is kept
    and its stock move is posted once the article exists."""

    receipt = models.ForeignKey(Receipt, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField()
    article = models.ForeignKey(Article, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    sku = models.CharField("SKU", max_length=64)
    barcode = models.CharField(max_length=14, blank=True)
    quantity = models.DecimalField(**QUANTITY)
    unit_price = models.DecimalField(**MONEY)
    discount = models.DecimalField(default=Decimal("0"), **MONEY)
    stock_move = models.ForeignKey(
        StockMove, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["receipt", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["receipt", "line_no"], name="receiptline_no_per_receipt")
        ]

    def __str__(self) -> str:
        return f"{self.receipt_id}/{self.line_no} {self.sku} x {self.quantity}"

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price - self.discount).quantize(Decimal("0.01"))


class PaymentLine(models.Model):
    """How a receipt was paid (cash, card, voucher ...)."""

    receipt = models.ForeignKey(Receipt, on_delete=models.CASCADE, related_name="payments")
    line_no = models.PositiveIntegerField()
    method = models.CharField(max_length=32)
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["receipt", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["receipt", "line_no"], name="paymentline_no_per_receipt")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount}"


class StockCount(models.Model):
    """A quantity counted at the register's location; on the main system it
    is posted to the ledger as a count move (absolute quantity)."""

    register = models.ForeignKey(CashRegister, on_delete=models.PROTECT, related_name="stock_counts")
    sku = models.CharField("SKU", max_length=64)
    article = models.ForeignKey(Article, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    counted_qty = models.DecimalField(**QUANTITY)
    counted_at = models.DateTimeField()
    stock_move = models.ForeignKey(
        StockMove, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-counted_at"]
        constraints = [
            models.UniqueConstraint(fields=["register", "sku", "counted_at"], name="stockcount_once")
        ]

    def __str__(self) -> str:
        return f"{self.sku} = {self.counted_qty}"


class SyncEntry(models.Model):
    """One record that travels between a register and the main system.

    Direction "out" is a register node's outbox (written in the sale's
    transaction, gap-free entry no. per register); direction "in" is what the
    main system received. Applying is in entry-no. order: an entry behind a
    missing number waits; one that cannot be applied is kept failed with its
    reason and `result`, and is retried once the cause is fixed."""

    class Direction(models.TextChoices):
        OUT = "out", "Outbox (to the main system)"
        IN = "in", "Received (from the register)"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        WAITING = "waiting", "Waiting for a missing entry"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        # A person decided a failed entry is not to be applied (with a reason).
        SKIPPED = "skipped", "Skipped by a person"

    register = models.ForeignKey(CashRegister, on_delete=models.CASCADE, related_name="entries")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    entry_no = models.BigIntegerField("entry no.")
    # Wider than any table name of ours: a newer register's table is kept (failed) as it came.
    table = models.CharField(max_length=64, choices=SyncTable.choices)
    record_id = models.CharField("record information", max_length=200)
    record = models.JSONField()
    record_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical record JSON")
    state = models.CharField(max_length=9, choices=State.choices)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True, help_text="The first outcome, returned for duplicates")
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["register", "direction", "entry_no"]
        verbose_name = "synchronization entry"
        verbose_name_plural = "synchronization entries"
        permissions = [
            ("retry_syncentry", "Can retry failed synchronization entries"),
            ("skip_syncentry", "Can skip (park) failed synchronization entries with a reason"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["register", "direction", "entry_no"], name="syncentry_no_once")
        ]
        indexes = [models.Index(fields=["register", "direction", "state", "entry_no"], name="syncentry_state_idx")]

    def __str__(self) -> str:
        return f"entry {self.entry_no}: {self.record_id}"


class SyncConflict(models.Model):
    """An entry no. that arrived again with different content: the first
    version stays; this one is kept for a person to look at (answered 409)."""

    register = models.ForeignKey(CashRegister, on_delete=models.CASCADE, related_name="conflicts")
    entry_no = models.BigIntegerField("entry no.")
    table = models.CharField(max_length=64)
    record_id = models.CharField("record information", max_length=200)
    record = models.JSONField()
    record_hash = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["register", "entry_no", "record_hash"], name="syncconflict_once"
            )
        ]

    def __str__(self) -> str:
        return f"conflict {self.register_id}#{self.entry_no}"
