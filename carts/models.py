"""External stores (carts now; superior/inferior stores and wholesalers
later), the product links between our articles and theirs, the outbound web
stack and the orders imported from them. See docs/carts.md."""
from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from carts.connectors.shopify_versions import SHOPIFY_VERSION_CHOICES
from carts.fields import EncryptedSecretsField
from posinv.models import Article, Location
from posinv.models.stock import QUANTITY


class CartSettings(models.Model):
    """System parameters of inventory synchronization (one row, pk=1).
    `synch_qoh` is the master switch (Stone Edge's SynchQOH): while it is off
    no stock change is queued for any cart."""

    synch_qoh = models.BooleanField(
        "synchronize QOH", default=False, help_text="Queue every stock change for the synchronized carts."
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=8, validators=[MinValueValidator(1)], help_text="An entry is failed after this many errors."
    )
    backoff_base_seconds = models.FloatField(default=1.0, validators=[MinValueValidator(0.01)])
    backoff_cap_seconds = models.FloatField(default=300.0, validators=[MinValueValidator(0.1)])
    claim_seconds = models.FloatField(
        default=30.0,
        validators=[MinValueValidator(1)],
        help_text="How long a worker holds claimed products; a killed worker's claim expires after this.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "cart settings"

    def __str__(self) -> str:
        return "Cart settings"


class RateWindow(models.Model):
    """The calls taken over a platform's rolling window by one credential
    (its hashed key), for installations without Redis: every process draws
    from this row under a lock (carts/ratelimit.py). `stamps` are Unix times;
    `blocked_until` is set when the platform blocks the credential."""

    key = models.CharField(max_length=120, unique=True)
    stamps = models.JSONField(default=list)
    blocked_until = models.FloatField(default=0)

    def __str__(self) -> str:
        return self.key


class ExternalStore(models.Model):
    """A place outside posinv that sells or supplies our articles: a shopping
    cart today; a superior/inferior store or a wholesaler later. `platform`
    names a registered connector (carts/connectors); `params` holds its plain
    parameters and `secrets` the secret ones, stored only encrypted (carts/fields.py,
    key from POSINV_SECRET_KEY_ENCRYPTION) and never shown by the admin."""

    class Kind(models.TextChoices):
        CART = "cart", "Shopping cart"
        STORE = "store", "External store"
        WHOLESALER = "wholesaler", "Wholesaler"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CART)
    platform = models.CharField(max_length=32, help_text="Connector: shopify, woocommerce, oscar, webhook.")
    url = models.URLField("URL", max_length=300)
    api_version = models.CharField(
        "API version", max_length=10, blank=True, choices=SHOPIFY_VERSION_CHOICES,
        help_text="Shopify only: the Admin API version (docs/carts.md lists what each supported one needs). "
                  "Blank: 2026-04.")
    params = models.JSONField(default=dict, blank=True, help_text="Connector parameters that are not secret.")
    secrets = EncryptedSecretsField(
        default=dict, blank=True, editable=False,
        help_text="Secret parameters, each value encrypted; only the connector factory decrypts them.")
    locations = models.ManyToManyField(
        Location, related_name="external_stores", blank=True,
        help_text="The locations whose stock this store sells (an inferior store: its source warehouses, summed).",
    )
    order_location = models.ForeignKey(
        Location,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Where imported orders take stock from and Get QOH counts (default: the first location).",
    )
    safety_buffer = models.DecimalField(
        default=Decimal("0"), validators=[MinValueValidator(0)], help_text="Held back from the cart.", **QUANTITY
    )
    sync_inventory = models.BooleanField("synchronize inventory", default=False)
    import_orders = models.BooleanField(default=False)
    order_interval_seconds = models.PositiveIntegerField(default=60)
    order_cursor = models.JSONField(default=dict, blank=True, help_text="Where the last order import stopped.")
    last_order_import_at = models.DateTimeField(null=True, blank=True)
    link_report = models.JSONField(default=dict, blank=True, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Issue 7 (seed 004): who leads, separately for stock and prices.
    class Direction(models.TextChoices):
        NONE = "none", "No synchronization"
        DOWNLOAD = "download", "Download from the store (superior store / wholesaler)"
        SEND = "send", "Send to the store (inferior store)"

    stock_direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.NONE)
    stock_target = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="Download: the warehouse that receives the store's quantities (as counts). "
                  "Send: the source warehouses are the store's locations, summed.")
    stock_interval_seconds = models.PositiveIntegerField(default=900)
    last_stock_run_at = models.DateTimeField(null=True, blank=True)
    zero_hold_share = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.5"),
        help_text="A download that would zero more than this share of the products is held for confirmation.")
    price_hold_share = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.5"),
        help_text="A price download that would zero or cut (see price cut share) more than this share of the "
                  "prices is held for confirmation.")
    price_cut_share = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.5"),
        help_text="A price counts as cut when it falls by more than this share (0.5: to less than half).")
    price_direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.NONE)
    price_group = models.ForeignKey(
        "posinv.PriceGroup", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="Download: the group that receives the prices. Send: the group whose prices go out.")
    price_interval_seconds = models.PositiveIntegerField(default=3600)
    last_price_run_at = models.DateTimeField(null=True, blank=True)
    direct_source = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="direct_channels",
        help_text="Direct scenario: publish the quantities last fetched from this external warehouse "
                  "(a superior store or wholesaler) instead of our ledger's; no ledger moves.")

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(safety_buffer__gte=0), name="store_buffer_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.platform})"


class StoreDownload(models.Model):
    """One download from a superior store or wholesaler, of its stock or its
    prices. Saved page by page (`pages`), so a run that stops (the platform's
    rate limit, a killed worker) continues from `next_page` instead of page 1;
    `resume_at` is when the platform's limit lets it go on. A complete
    download that looks like a broken feed (most figures dropping to zero, or
    prices cut) is `held` with `hold_reason` until a person applies or
    discards it (admin, permission checked)."""

    class Kind(models.TextChoices):
        STOCK = "stock", "Stock"
        PRICES = "prices", "Prices"

    class State(models.TextChoices):
        FETCHING = "fetching", "Fetching"
        HELD = "held", "Held for confirmation"
        APPLIED = "applied", "Applied"
        DISCARDED = "discarded", "Discarded"

    store = models.ForeignKey(ExternalStore, on_delete=models.CASCADE, related_name="downloads")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.FETCHING)
    next_page = models.PositiveIntegerField(default=1, help_text="The page the next call reads.")
    complete = models.BooleanField(default=False, help_text="Every page has been read.")
    pages_read = models.PositiveIntegerField(default=0)
    products_read = models.PositiveIntegerField(default=0)
    resume_at = models.DateTimeField(null=True, blank=True,
                                     help_text="The platform's rate limit: the download goes on from then.")
    hold_reason = models.TextField(blank=True)
    bad_rows = models.JSONField(default=list, blank=True)
    outcome = models.JSONField(default=dict, blank=True, help_text="What applying it changed.")
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        permissions = [("confirm_storedownload", "Can apply or discard a held store download")]
        constraints = [
            models.UniqueConstraint(fields=["store", "kind"], condition=Q(state__in=["fetching", "held"]),
                                    name="download_one_open_per_store_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id} {self.kind} {self.started_at:%Y-%m-%d %H:%M} ({self.state})"


class StoreDownloadPage(models.Model):
    """One page of a download as the store answered it: {ref: figure} (figures as strings)."""

    download = models.ForeignKey(StoreDownload, on_delete=models.CASCADE, related_name="pages")
    page = models.PositiveIntegerField()
    figures = models.JSONField(default=dict)

    class Meta:
        ordering = ["download", "page"]
        constraints = [models.UniqueConstraint(fields=["download", "page"], name="download_page_once")]


class ProductLink(models.Model):
    """Our article on one store: the store's product/variant/inventory item
    (`remote_ref` is what the connector addresses). The claim columns let one
    worker at a time send this product (so sends for one product never race),
    and `remote_quantity` is the last quantity we know the store holds (the
    compare-and-set base); `outcome_unknown` says the last send timed out and
    must be read back before sending again."""

    class Match(models.TextChoices):
        SKU = "sku", "SKU"
        BARCODE = "barcode", "Barcode"
        MANUAL = "manual", "Manual"

    store = models.ForeignKey(ExternalStore, on_delete=models.CASCADE, related_name="links")
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="store_links")
    remote_ref = models.CharField(max_length=200, help_text="Inventory item / variation / stock record id.")
    remote_product_id = models.CharField(max_length=120, blank=True)
    remote_sku = models.CharField(max_length=120, blank=True)
    remote_barcode = models.CharField(max_length=40, blank=True)
    matched_by = models.CharField(max_length=8, choices=Match.choices, default=Match.SKU)
    remote_quantity = models.IntegerField(null=True, blank=True)
    last_sent_quantity = models.IntegerField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    outcome_unknown = models.BooleanField(default=False)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["store", "article"]
        constraints = [
            models.UniqueConstraint(fields=["store", "article"], name="link_one_per_article"),
            models.UniqueConstraint(fields=["store", "remote_ref"], name="link_one_per_remote"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}:{self.article_id}->{self.remote_ref}"


class StackEntry(models.Model):
    """One record on the web stack: this store should show `quantity`
    (available to sell, absolute) for this article. Entries of one product
    coalesce: a send publishes the newest figure and settles all of them."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        DISCARDED = "discarded", "Discarded"

    store = models.ForeignKey(ExternalStore, on_delete=models.CASCADE, related_name="stack")
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+")
    quantity = models.IntegerField(help_text="Available to sell when the change was queued.")
    sent_quantity = models.IntegerField(null=True, blank=True, help_text="The figure finally published.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    attempts = models.PositiveIntegerField(default=0)
    last_response = models.TextField(blank=True)
    origin = models.CharField(max_length=16, blank=True)
    origin_code = models.CharField(max_length=120, blank=True)
    next_attempt_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "web stack"
        indexes = [models.Index(fields=["store", "state", "article"], name="stack_store_state_idx")]

    def __str__(self) -> str:
        return f"{self.store_id}:{self.article_id}={self.quantity} ({self.state})"


class ImportedOrder(models.Model):
    """An order fetched from (or pushed by) a store, keyed by store and the
    store's order id; its lines move stock."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (stock reserved)"
        OPEN = "open", "Open (stock taken)"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    store = models.ForeignKey(ExternalStore, on_delete=models.CASCADE, related_name="orders")
    external_id = models.CharField(max_length=120)
    number = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    remote_status = models.CharField(max_length=60, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["store", "external_id"], name="order_one_per_store")]

    def __str__(self) -> str:
        return f"{self.store_id}:{self.number or self.external_id}"


class ImportedOrderLine(models.Model):
    """One line of an imported order. A line whose SKU we do not know is kept
    with its reason and retried, never dropped."""

    class State(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        POSTED = "posted", "Sale posted"
        UNKNOWN_SKU = "unknown_sku", "Unknown SKU"
        HELD = "held", "Held (ledger refused)"
        RETURNED = "returned", "Returned"
        VOID = "void", "Cancelled before posting"

    order = models.ForeignKey(ImportedOrder, on_delete=models.CASCADE, related_name="lines")
    line_id = models.CharField(max_length=120)
    sku = models.CharField(max_length=120, blank=True)
    barcode = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=200, blank=True)
    quantity = models.DecimalField(**QUANTITY)
    refunded_quantity = models.DecimalField(
        default=Decimal("0"), help_text="Refunded according to the store.", **QUANTITY
    )
    returned_quantity = models.DecimalField(
        default=Decimal("0"), help_text="Taken back into stock by us.", **QUANTITY
    )
    article = models.ForeignKey(Article, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    state = models.CharField(max_length=12, choices=State.choices)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["order", "id"]
        constraints = [models.UniqueConstraint(fields=["order", "line_id"], name="orderline_one_per_line")]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.line_id} {self.sku} x{self.quantity}"
