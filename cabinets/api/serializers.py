"""Input and output serializers of the cabinet readings API."""
from __future__ import annotations

from datetime import UTC

from rest_framework import serializers

from cabinets.services.parsing import readings_parse
from cabinets.services.readings import ApplyResult
from posinv.api.fields import TimeField


class ReadingSerializer(serializers.Serializer):
    """One reading (documentation of the shape; validation is readings_parse)."""

    tray_id = serializers.CharField(max_length=64)
    weight_g = serializers.DecimalField(max_digits=12, decimal_places=3, help_text="gross weight in grams")
    position = serializers.CharField(max_length=32, required=False, allow_blank=True)
    read_at = TimeField(help_text="ISO 8601 with zone")


class ReadingsInSerializer(serializers.Serializer):
    """`{"readings": [...]}`: validated in one pass by `readings_parse`, so a
    5,000-reading batch costs no per-field serializer overhead."""

    readings = ReadingSerializer(many=True)

    def to_internal_value(self, data):
        # InvalidInput passes through is_valid to the API's exception handler,
        # which answers 400 with every problem as {"field", "reason", "index"}.
        return {"readings": readings_parse(body=data)}


def readings_answer(result: ApplyResult) -> dict:
    """The answer of ReadingsAnswerSerializer, built directly: a serializer
    walking 10 fields of up to 5,000 results cost more than applying them."""
    return {
        **result.counts(),
        "results": [
            {
                "index": r.index,
                "tray_id": r.tray_id,
                "read_at": r.read_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "status": r.status,
                "outcome": r.outcome,
                "quantity": None if r.quantity is None else f"{r.quantity:.3f}",
                "move_id": r.move_id,
                "code": r.code,
                "reason": r.reason,
                "position_ignored": r.position_ignored,
            }
            for r in result.results
        ],
    }


class ReadingResultSerializer(serializers.Serializer):
    """One reading's result (the schema of `readings_answer`)."""

    index = serializers.IntegerField()
    tray_id = serializers.CharField()
    read_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["applied", "duplicate", "rejected"])
    outcome = serializers.CharField(help_text="posted, unchanged, held or stale (applied and duplicate)")
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, allow_null=True)
    move_id = serializers.IntegerField(allow_null=True)
    code = serializers.CharField(help_text="why a reading was rejected (unknown_tray, no_article, ...)")
    reason = serializers.CharField()
    position_ignored = serializers.BooleanField()


class ReadingsAnswerSerializer(serializers.Serializer):
    """The answer to a readings push (the schema of `readings_answer`)."""

    received = serializers.IntegerField()
    applied = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    posted = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    held = serializers.IntegerField()
    stale = serializers.IntegerField()
    results = ReadingResultSerializer(many=True)
