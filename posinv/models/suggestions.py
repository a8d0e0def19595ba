"""Order suggestions: one open per article and location, from a reorder
point or a cabinet tray threshold, closed when stock recovers."""
from __future__ import annotations

from django.db import models

from .catalog import Article, Location
from .stock import QUANTITY


class ReorderSuggestion(models.Model):
    """A proposal to buy an article for a location, kept open (and updated)
    while stock stays below the trigger, so purchasing sees one list."""

    class Source(models.TextChoices):
        REORDER_POINT = "reorder_point", "Reorder point"
        TRAY = "tray", "Cabinet tray threshold"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ORDERED = "ordered", "Ordered"
        CLOSED = "closed", "Closed"

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="suggestions")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="suggestions")
    source = models.CharField(max_length=16, choices=Source.choices)
    source_ref = models.CharField(max_length=120, blank=True, help_text="e.g. the tray id")
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    quantity_on_hand = models.DecimalField(**QUANTITY)
    trigger_level = models.DecimalField(**QUANTITY)
    suggested_quantity = models.DecimalField(**QUANTITY)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["article", "location"],
                condition=models.Q(state="open"),
                name="suggestion_one_open_per_pair",
            )
        ]

    def __str__(self) -> str:
        return f"suggest {self.suggested_quantity} of {self.article_id}@{self.location_id}"
