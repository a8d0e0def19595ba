"""Back-office data: suppliers and what they sell us, purchase orders and
their deliveries, how each reorder level was set, and the report pages'
permission holder. Stock itself stays in the core ledger."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from pos.models import Customer
from posinv.bounds import AMOUNT_MAX, QUANTITY_MAX
from posinv.models import Article, Location, ReorderSuggestion, StockLevel, StockMove

QUANTITY = {"max_digits": 14, "decimal_places": 3}
MONEY = {"max_digits": 14, "decimal_places": 4}
# The system's bound (posinv/bounds.py) on what a person types in here.
WITHIN_QUANTITY = MaxValueValidator(QUANTITY_MAX)
WITHIN_AMOUNT = MaxValueValidator(AMOUNT_MAX)


class Report(models.Model):
    """No table: holds the permission to open the report pages and gives
    them a place in the admin index."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_reports", "Can view sales reports and export them")]
        verbose_name = "sales report"
        verbose_name_plural = "sales reports"


class Supplier(models.Model):
    """Someone we buy from; `lead_time_days` applies to its articles unless
    a supplier article says otherwise."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    email = models.EmailField(blank=True)
    lead_time_days = models.PositiveIntegerField(default=7, validators=[MinValueValidator(0)])
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class SupplierArticle(models.Model):
    """An article as one supplier sells it: its SKU there, the pack it comes
    in, the minimum order, the lead time and our cost per unit (the cost the
    margin report uses). At most one preferred supplier per article."""

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="articles")
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="supplier_articles")
    supplier_sku = models.CharField("supplier SKU", max_length=64)
    pack_size = models.DecimalField(
        default=Decimal("1"), validators=[MinValueValidator(Decimal("0.001")), WITHIN_QUANTITY], **QUANTITY
    )
    min_order_qty = models.DecimalField(
        "minimum order quantity", default=Decimal("0"), validators=[MinValueValidator(Decimal("0")), WITHIN_QUANTITY],
        **QUANTITY,
    )
    lead_time_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the supplier's.")
    cost = models.DecimalField(
        "unit cost", null=True, blank=True, validators=[MinValueValidator(Decimal("0")), WITHIN_AMOUNT], **MONEY
    )
    preferred = models.BooleanField(default=True)

    class Meta:
        ordering = ["supplier", "supplier_sku"]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "article"], name="supplierarticle_once"),
            models.UniqueConstraint(
                fields=["article"], condition=models.Q(preferred=True), name="supplierarticle_one_preferred"
            ),
            models.CheckConstraint(condition=models.Q(pack_size__gt=0), name="supplierarticle_pack_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier_id}:{self.supplier_sku}"


class ReorderPlan(models.Model):
    """How the reorder point and order-up-to level of one (article,
    location) were last set: by hand (the compute command leaves it alone)
    or computed, with the inputs used. The levels live on StockLevel."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Set by hand"
        COMPUTED = "computed", "Computed from sales"

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=8, choices=Source.choices)
    avg_daily_sales = models.DecimalField(null=True, blank=True, **QUANTITY)
    lead_time_days = models.PositiveIntegerField(null=True, blank=True)
    safety_factor = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    set_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "location"], name="reorderplan_once")]

    def __str__(self) -> str:
        return f"{self.article_id}@{self.location_id} {self.source}"


class PurchaseOrder(models.Model):
    """An order to one supplier for one delivery location. States go
    draft → sent → partly received → received (or cancelled before any
    delivery); each change is a guarded single-column update."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        PARTLY_RECEIVED = "partly_received", "Partly received"
        RECEIVED = "received", "Received"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=32, unique=True)
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="purchase_orders")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("send_purchaseorder", "Can send purchase orders"),
            ("receive_purchaseorder", "Can receive goods against purchase orders"),
        ]

    def __str__(self) -> str:
        return self.number


class PurchaseOrderLine(models.Model):
    """One article on a purchase order: ordered (already rounded to packs
    and minimums), received so far, and the suggestion it came from."""

    order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField()
    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="+")
    supplier_article = models.ForeignKey(
        SupplierArticle, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    quantity_ordered = models.DecimalField(
        validators=[MinValueValidator(Decimal("0.001")), WITHIN_QUANTITY], **QUANTITY
    )
    quantity_received = models.DecimalField(default=Decimal("0"), **QUANTITY)
    unit_cost = models.DecimalField(null=True, blank=True, validators=[WITHIN_AMOUNT], **MONEY)
    suggestion = models.ForeignKey(
        ReorderSuggestion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["order", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="poline_no_once"),
            models.UniqueConstraint(fields=["order", "article"], name="poline_article_once"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.line_no}"


class GoodsReceipt(models.Model):
    """One delivery booked against a purchase order, named by the delivery
    note; booking the same note again moves nothing (idempotent)."""

    order = models.ForeignKey(PurchaseOrder, on_delete=models.PROTECT, related_name="deliveries")
    delivery_note = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["order", "delivery_note"], name="goodsreceipt_note_once")]

    def __str__(self) -> str:
        return f"{self.order_id} {self.delivery_note}"


class GoodsReceiptLine(models.Model):
    """A quantity of one order line in a delivery, and the receipt move that put it into stock."""

    receipt = models.ForeignKey(GoodsReceipt, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(PurchaseOrderLine, on_delete=models.PROTECT, related_name="receipts")
    quantity = models.DecimalField(**QUANTITY)
    stock_move = models.ForeignKey(StockMove, null=True, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.receipt_id}: {self.quantity} of line {self.order_line_id}"


# Proxies over core and POS tables for the admin: they carry their own
# permissions, so a role can edit reorder levels without stock levels.


class ReorderLevel(StockLevel):
    """A stock level seen as its reorder point and order-up-to level."""

    class Meta:
        proxy = True
        verbose_name = "reorder level"


class OrderSuggestion(ReorderSuggestion):
    """The purchasing view of order suggestions (reorder points and cabinet trays)."""

    class Meta:
        proxy = True
        verbose_name = "order suggestion"


class CustomerHistory(Customer):
    """A customer with purchase history and totals."""

    class Meta:
        proxy = True
        verbose_name = "customer history"
        verbose_name_plural = "customer histories"


# The daily sales rollup (issue 9, speed): the report queries read whole
# past days from these tables instead of every receipt line. They are
# derived data only: `manage.py reports_rollup --rebuild` recreates them
# from the receipts at any time (services/rollup.py).


class SalesDay(models.Model):
    """Net sales of one article at one location on one day (the receipt's
    date in the current time zone, the register's location): the sum of
    the receipt lines, returns included. `article` is empty for lines
    without an article (they count in totals, not in article reports)."""

    day = models.DateField()
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+", db_index=False)
    article = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    quantity = models.DecimalField(max_digits=18, decimal_places=3)
    # quantity (3 places) x unit price (2 places) - discount: 5 places, exact.
    revenue = models.DecimalField(max_digits=22, decimal_places=5)
    lines = models.PositiveIntegerField()

    class Meta:
        verbose_name = "daily sales (rollup)"
        verbose_name_plural = "daily sales (rollup)"
        indexes = [models.Index(fields=["day", "location", "article"], name="salesday_day_loc_art")]


class SalesMonth(models.Model):
    """Net sales of one article in one calendar month (`month` is its first
    day), per location, and once more over all locations (`location`
    empty): a year-long report reads twelve of these per article instead of
    365 day rows. Re-aggregated from SalesDay whenever a day of the month
    is re-rolled."""

    month = models.DateField()
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+", db_index=False)
    quantity = models.DecimalField(max_digits=18, decimal_places=3)
    revenue = models.DecimalField(max_digits=22, decimal_places=5)

    class Meta:
        verbose_name = "monthly sales (rollup)"
        verbose_name_plural = "monthly sales (rollup)"
        indexes = [models.Index(fields=["month", "location", "article"], name="salesmonth_mon_loc_art")]


class SalesToMonth(models.Model):
    """Units sold of one article at one location from the first month of
    the history through the end of `month` (a running total, one row per
    month for every pair that has sold by then). Units sold between two
    month ends are the difference of two rows per pair, so the days of
    cover over a year read ~2 rows per (article, location) instead of 12."""

    month = models.DateField()
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+", db_index=False)
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+", db_index=False)
    quantity = models.DecimalField(max_digits=20, decimal_places=3)

    class Meta:
        verbose_name = "units sold to month end (rollup)"
        verbose_name_plural = "units sold to month end (rollup)"
        indexes = [models.Index(fields=["month"], name="salestomonth_month")]


class ReceiptsDay(models.Model):
    """Receipts, quantity and revenue of one location on one day (every
    line, with or without an article): the sales page and the comparison
    read these few rows."""

    day = models.DateField()
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+", db_index=False)
    receipts = models.PositiveIntegerField()
    # Filled from the SalesDay rows of the day right after the INSERT.
    quantity = models.DecimalField(max_digits=18, decimal_places=3, db_default=Decimal(0))
    revenue = models.DecimalField(max_digits=22, decimal_places=5, db_default=Decimal(0))
    lines = models.PositiveIntegerField(db_default=0)

    class Meta:
        verbose_name = "daily receipts (rollup)"
        verbose_name_plural = "daily receipts (rollup)"
        constraints = [models.UniqueConstraint(fields=["day", "location"], name="receiptsday_day_location")]


class RollupState(models.Model):
    """How far the rollup is: one row (name "sales"). Reports read days up
    to `complete_through` from the rollup and later days from the lines;
    `rolled_at` is when the last run started (the next run re-rolls every
    day touched by a receipt recorded since, less a safety margin)."""

    name = models.CharField(max_length=20, primary_key=True)
    rolled_at = models.DateTimeField(null=True, blank=True)
    complete_through = models.DateField(null=True, blank=True)
    days_rolled = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "rollup state"

    def __str__(self) -> str:
        return f"{self.name}: complete through {self.complete_through or '-'}"
