"""Weighing cabinets: a cabinet is a stock location whose trays weigh what
they hold; each reading of a tray's weight becomes a quantity posted to the
ledger (docs/cabinets.md explains the weight-to-quantity rule)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from posinv.models import Article, Location, StockMove

QUANTITY = {"max_digits": 14, "decimal_places": 3}
GRAMS = {"max_digits": 12, "decimal_places": 3}


class WeighingCabinet(models.Model):
    """A weighing cabinet: its own stock location, how readings arrive (pushed
    with its device token, or pulled from the vendor endpoint every
    `interval_seconds`), and the noise rules that turn grams into pieces."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=120, blank=True)
    location = models.OneToOneField(Location, on_delete=models.PROTECT, related_name="cabinet")
    active = models.BooleanField(default=True)
    pull_url = models.URLField(
        "vendor endpoint", blank=True, help_text="Readings URL of the cabinet vendor; empty for a push-only cabinet."
    )
    pull_api_key = models.CharField(
        "vendor API key", max_length=200, blank=True, help_text="Sent as 'Authorization: Bearer <key>'."
    )
    pull_timeout_seconds = models.FloatField(default=10, validators=[MinValueValidator(0.1)])
    interval_seconds = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(1)],
        help_text="How often readings are expected (and pulled). Default 600 s = 10 minutes.",
    )
    tolerance = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.250"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("0.49"))],
        help_text="Fraction of the unit weight a reading may be off a whole number of units; "
        "farther off, it is held as ambiguous.",
    )
    hysteresis_units = models.DecimalField(
        "hysteresis (units)",
        max_digits=8,
        decimal_places=0,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="A new count is posted only when it differs from the tray's quantity by more than this.",
    )
    piece_variation = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.0100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.2"))],
        help_text="Spread of piece weights (0.01 = 1 %); large counts get a margin of count x this.",
    )
    max_weight_g = models.DecimalField(
        "cell capacity (g)",
        default=Decimal("30000"),
        validators=[MinValueValidator(Decimal("1"))],
        help_text="A reading above this is absurd and rejected.",
        **GRAMS,
    )
    last_reading_at = models.DateTimeField(null=True, blank=True, help_text="When a reading last arrived.")
    last_pull_at = models.DateTimeField(null=True, blank=True)
    pull_cursor = models.DateTimeField(
        null=True, blank=True,
        help_text="Newest vendor read time pulled and accepted (or finally rejected); the next pull asks from "
        "here. A reading rejected for its clock never moves it.",
    )
    last_pull_error = models.TextField(blank=True)
    pull_blocked_until = models.DateTimeField(
        null=True, blank=True, help_text="The vendor asked us (429 Retry-After) not to pull before this time."
    )
    last_rejected_at = models.DateTimeField(
        null=True, blank=True, help_text="When a reading of this cabinet was last rejected (Sync health shows it)."
    )
    last_rejected_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def pulls(self) -> bool:
        return bool(self.pull_url)

    def is_silent(self, now=None) -> bool:
        """Nothing arrived for two intervals (or ever, once two intervals have passed since creation)."""
        now = now or timezone.now()
        since = self.last_reading_at or self.created_at
        return since is not None and now - since > timedelta(seconds=2 * self.interval_seconds)


class Tray(models.Model):
    """One tray of a cabinet, linked to the article it holds. `quantity` is
    the count last posted to the ledger; `position` is taken from readings
    only while the tray is empty, so filled trays can be swapped around."""

    class State(models.TextChoices):
        EMPTY = "empty", "Empty"
        FILLED = "filled", "Filled"

    cabinet = models.ForeignKey(WeighingCabinet, on_delete=models.CASCADE, related_name="trays")
    tray_id = models.CharField("tray id", max_length=64)
    position = models.CharField(max_length=32, blank=True)
    article = models.ForeignKey(Article, null=True, blank=True, on_delete=models.PROTECT, related_name="trays")
    tare_g = models.DecimalField("tare (g)", default=Decimal("0"), validators=[MinValueValidator(0)], **GRAMS)
    threshold = models.DecimalField(
        "order threshold (units)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Below this many units an order suggestion opens.",
        **QUANTITY,
    )
    capacity = models.DecimalField(
        "capacity (units)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Suggestions order up to this; without it, up to twice the threshold.",
        **QUANTITY,
    )
    weight_g = models.DecimalField("weight (g)", null=True, blank=True, **GRAMS)
    quantity = models.DecimalField(null=True, blank=True, **QUANTITY)
    state = models.CharField(max_length=8, choices=State.choices, default=State.EMPTY)
    last_read_at = models.DateTimeField(null=True, blank=True)
    quantity_since = models.DateTimeField(
        null=True, blank=True, help_text="Read time of the reading that set the current quantity."
    )
    counted_at = models.DateTimeField(
        null=True, blank=True, help_text="When (our clock) the reading that set the current quantity arrived."
    )
    held_quantity = models.DecimalField(
        null=True, blank=True, help_text="Count of an ambiguous reading waiting for a repeat.", **QUANTITY
    )
    suggesting = models.BooleanField(default=False, help_text="An order suggestion was opened for this tray.")

    class Meta:
        ordering = ["cabinet", "tray_id"]
        constraints = [models.UniqueConstraint(fields=["cabinet", "tray_id"], name="tray_id_unique_per_cabinet")]

    def __str__(self) -> str:
        return f"{self.cabinet.code}/{self.tray_id}"

    def clean(self) -> None:
        # A filled tray's stock belongs to its article: relinking it would
        # silently turn those grams into another article. Empty it first.
        if self.pk and self.state == self.State.FILLED:
            linked = Tray.objects.filter(pk=self.pk).values_list("article_id", flat=True).first()
            if linked is not None and linked != self.article_id:
                raise ValidationError({"article": "This tray is filled; empty it before linking another article."})

    @property
    def below_threshold(self) -> bool:
        return self.threshold is not None and self.quantity is not None and self.quantity < self.threshold


class WeightReading(models.Model):
    """One reading of a tray's weight, pushed or pulled, and what became of
    it. Rejected readings are kept (with `tray_code` as sent) so the admin
    shows why; only accepted readings are unique per tray and read time."""

    class Outcome(models.TextChoices):
        POSTED = "posted", "Count posted"
        UNCHANGED = "unchanged", "No change"
        HELD = "held", "Held: ambiguous"
        STALE = "stale", "Older than the tray's last reading"
        REJECTED = "rejected", "Rejected"

    class Via(models.TextChoices):
        PUSH = "push", "Pushed"
        PULL = "pull", "Pulled"

    cabinet = models.ForeignKey(WeighingCabinet, on_delete=models.CASCADE, related_name="readings")
    tray = models.ForeignKey(Tray, null=True, blank=True, on_delete=models.CASCADE, related_name="readings")
    tray_code = models.CharField("tray id", max_length=64)
    weight_g = models.DecimalField("weight (g)", **GRAMS)
    position = models.CharField(max_length=32, blank=True)
    position_ignored = models.BooleanField(
        default=False, help_text="The reading named another position while the tray was filled."
    )
    read_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    via = models.CharField(max_length=4, choices=Via.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    quantity = models.DecimalField(null=True, blank=True, help_text="Units this reading amounts to.", **QUANTITY)
    reason = models.CharField(max_length=200, blank=True)
    move = models.ForeignKey(StockMove, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-read_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cabinet", "tray_code", "read_at"],
                condition=~models.Q(outcome="rejected"),
                name="reading_once_per_tray_and_time",
            )
        ]
        indexes = [
            models.Index(fields=["tray", "read_at"], name="reading_tray_time_idx"),
            # The admin lists the newest readings first over every cabinet.
            models.Index(fields=["read_at"], name="reading_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.tray_code} {self.weight_g} g at {self.read_at:%Y-%m-%d %H:%M:%S}"


class ShrinkAlert(models.Model):
    """A tray lost more units than were sold at the cabinet's location since
    the reading that set its previous quantity: theft, breakage or a miscount."""

    tray = models.ForeignKey(Tray, on_delete=models.CASCADE, related_name="shrink_alerts")
    reading = models.OneToOneField(WeightReading, on_delete=models.CASCADE, related_name="shrink_alert")
    previous_quantity = models.DecimalField(**QUANTITY)
    new_quantity = models.DecimalField(**QUANTITY)
    sold = models.DecimalField(**QUANTITY)
    unexplained = models.DecimalField(**QUANTITY)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"shrink of {self.unexplained} on {self.tray}"
