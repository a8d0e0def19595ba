"""Input and output serializers of the core API. Inputs validate shape and
types; the services decide everything else."""

from __future__ import annotations

from rest_framework import serializers

from posinv.api.fields import QuantityField
from posinv.models import StockMove

MAX_MOVES_PER_BATCH = 1000
QUANTITY = {"max_digits": 14, "decimal_places": 3}


class BarcodeOut(serializers.Serializer):
    code = serializers.CharField()
    gtin = serializers.CharField()
    pack_qty = serializers.DecimalField(max_digits=12, decimal_places=3)


class PriceOut(serializers.Serializer):
    group = serializers.CharField(source="group.code")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    valid_from = serializers.DateField()


class ArticleOut(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    unit_weight_g = serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    category = serializers.CharField()
    active = serializers.BooleanField()
    barcodes = BarcodeOut(many=True, source="barcodes.all")


class ArticleLookupOut(serializers.Serializer):
    matched_by = serializers.ChoiceField(choices=["sku", "barcode"])
    pack_qty = serializers.DecimalField(max_digits=12, decimal_places=3, help_text="units one scan of the code means")
    article = ArticleOut()
    prices = PriceOut(many=True, help_text="the price valid today in each price group")


class ArticleLookupIn(serializers.Serializer):
    code = serializers.CharField(max_length=64, help_text="a SKU, or a barcode in any GTIN form (EAN-8/13, UPC-A, 14)")


class StockLevelOut(serializers.Serializer):
    sku = serializers.CharField(source="article.sku")
    article_name = serializers.CharField(source="article.name")
    location = serializers.CharField(source="location.code")
    on_hand = serializers.DecimalField(**QUANTITY)
    reorder_point = serializers.DecimalField(allow_null=True, **QUANTITY)
    updated_at = serializers.DateTimeField()


class StockLevelFilterIn(serializers.Serializer):
    location = serializers.CharField(required=False, max_length=32, help_text="location code")
    article = serializers.CharField(required=False, max_length=64, help_text="SKU or barcode")


class MoveIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=StockMove.Kind.values)
    idempotency_key = serializers.CharField(
        max_length=200, help_text="unique per move: a replay with the same key moves nothing"
    )
    sku = serializers.CharField(required=False, max_length=64)
    barcode = serializers.CharField(
        required=False, max_length=14, help_text="instead of sku; a pack barcode multiplies the quantity"
    )
    location = serializers.CharField(max_length=32, help_text="location code")
    quantity = QuantityField(required=False, help_text="signed; not for counts")
    counted = QuantityField(required=False, help_text="counts only: the absolute quantity found, not negative")
    reference = serializers.CharField(required=False, default="", allow_blank=True, max_length=120)
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)

    def validate(self, data):
        if ("sku" in data) == ("barcode" in data):
            raise serializers.ValidationError({"sku": "give either sku or barcode"})
        if data["kind"] == StockMove.Kind.COUNT:
            if "counted" not in data:
                raise serializers.ValidationError({"counted": "a count needs the counted quantity"})
            if "quantity" in data:
                raise serializers.ValidationError({"quantity": "a count gives `counted`, not `quantity`"})
        else:
            if "quantity" not in data:
                raise serializers.ValidationError({"quantity": "this field is required"})
            if "counted" in data:
                raise serializers.ValidationError({"counted": "only a count gives `counted`"})
        return data


class MoveBatchIn(serializers.Serializer):
    moves = MoveIn(many=True, allow_empty=False, max_length=MAX_MOVES_PER_BATCH)
    partial = serializers.BooleanField(
        default=False, help_text="post the good moves and report refused ones (default: all or nothing)"
    )


class ProblemOut(serializers.Serializer):
    field = serializers.CharField(required=False)
    reason = serializers.CharField()
    code = serializers.CharField()


class MoveResultOut(serializers.Serializer):
    index = serializers.IntegerField()
    idempotency_key = serializers.CharField()
    status = serializers.ChoiceField(choices=["posted", "duplicate", "refused"])
    move_id = serializers.IntegerField(allow_null=True)
    quantity = serializers.DecimalField(allow_null=True, **QUANTITY)
    balance_after = serializers.DecimalField(allow_null=True, **QUANTITY)
    problem = ProblemOut(allow_null=True, required=False)


class MoveBatchOut(serializers.Serializer):
    posted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    refused = serializers.IntegerField()
    results = MoveResultOut(many=True)


class ErrorsOut(serializers.Serializer):
    errors = ProblemOut(many=True)
