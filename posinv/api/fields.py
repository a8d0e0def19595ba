"""Serializer fields for the system's bounded figures (posinv/bounds.py).

Every input that carries a quantity or an amount uses one of these, so the
bound is the same at every entrance and shows in the OpenAPI schema
(a pattern of at most 9 whole digits, and the range in the description): a figure
beyond it is answered 400 naming the field. Outputs keep the columns' own
precision (a level poisoned before the bound existed must still be shown)."""
from __future__ import annotations

from rest_framework import serializers

from posinv.bounds import (
    AMOUNT_MAX,
    AMOUNT_PLACES,
    AMOUNT_RANGE_TEXT,
    QUANTITY_MAX,
    QUANTITY_PLACES,
    QUANTITY_RANGE_TEXT,
    WHOLE_DIGITS,
    decimal_text_problem,
    time_problem,
)


class _BoundedDecimalField(serializers.DecimalField):
    bound = QUANTITY_MAX
    places = QUANTITY_PLACES
    range_text = QUANTITY_RANGE_TEXT
    what = "quantity"

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", WHOLE_DIGITS + self.places)
        kwargs.setdefault("decimal_places", self.places)
        kwargs.setdefault("max_value", self.bound)
        kwargs.setdefault("min_value", -self.bound)
        # The schema's pattern (at most 9 whole digits) is the bound itself;
        # the description says it in words.
        within = f"{self.range_text} (the system's {self.what} bound)"
        kwargs["help_text"] = f"{kwargs['help_text']} {within[0].upper()}{within[1:]}." if kwargs.get(
            "help_text") else f"{within[0].upper()}{within[1:]}."
        super().__init__(**kwargs)
        beyond = f"must be {self.range_text} (the system's {self.what} bound)"
        for key in ("max_whole_digits", "max_digits", "max_value", "min_value"):
            self.error_messages[key] = beyond
        if kwargs["min_value"] != -self.bound:
            self.error_messages["min_value"] = "must be at least {min_value}"
        if kwargs["max_value"] != self.bound:
            self.error_messages["max_value"] = "must be at most {max_value}"


    def to_internal_value(self, data):
        # DRF reads text through Decimal(), which takes "1_000", " 1 " and "1e3" too.
        if isinstance(data, str):
            problem = decimal_text_problem(data)
            if problem:
                raise serializers.ValidationError(problem, code="invalid")
        return super().to_internal_value(data)


class QuantityField(_BoundedDecimalField):
    """A quantity within ±QUANTITY_MAX, at most 3 decimal places."""


class AmountField(_BoundedDecimalField):
    """An amount of money within ±AMOUNT_MAX, at most 2 decimal places."""

    bound = AMOUNT_MAX
    places = AMOUNT_PLACES
    range_text = AMOUNT_RANGE_TEXT
    what = "amount"


class TimeField(serializers.DateTimeField):
    """An input time within the system's bound (posinv/bounds.py TIME_MIN..TIME_MAX)."""

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        problem = time_problem(parsed) if parsed.tzinfo is not None else None
        if problem:
            raise serializers.ValidationError(problem, code="invalid")
        return parsed
