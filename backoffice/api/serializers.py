"""Input and output shapes of the back-office API."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from posinv.api.fields import QuantityField


class RecommendationQuery(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)
    often = serializers.IntegerField(required=False, default=2, min_value=1, max_value=1000)


class Recommendation(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    customers = serializers.IntegerField(help_text="other customers who bought it with what this customer bought")


class CustomerMatchQuery(serializers.Serializer):
    customer_no = serializers.CharField(required=False, default="", allow_blank=True)
    card_no = serializers.CharField(required=False, default="", allow_blank=True)
    email = serializers.CharField(required=False, default="", allow_blank=True)


class CustomerTotals(serializers.Serializer):
    receipts = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    items = serializers.DecimalField(max_digits=16, decimal_places=3)
    first_purchase = serializers.DateTimeField(allow_null=True)
    last_purchase = serializers.DateTimeField(allow_null=True)


class CustomerArticle(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    receipts = serializers.IntegerField()
    quantity = serializers.DecimalField(max_digits=16, decimal_places=3)
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)


class CustomerReceipt(serializers.Serializer):
    receipt_no = serializers.CharField()
    created_at = serializers.DateTimeField()
    location = serializers.CharField(source="register.location.code")
    lines = serializers.IntegerField(source="line_count")
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()


class Customer(serializers.Serializer):
    customer_no = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    card_no = serializers.CharField()


class ReceiveLine(serializers.Serializer):
    line_no = serializers.IntegerField(min_value=1)
    quantity = QuantityField(min_value=Decimal("0.001"))


class ReceiveInput(serializers.Serializer):
    delivery_note = serializers.CharField(max_length=64)
    lines = ReceiveLine(many=True, allow_empty=False)


class PurchaseOrderLineOut(serializers.Serializer):
    line_no = serializers.IntegerField()
    sku = serializers.CharField(source="article.sku")
    quantity_ordered = serializers.DecimalField(max_digits=14, decimal_places=3)
    quantity_received = serializers.DecimalField(max_digits=14, decimal_places=3)


class PurchaseOrderOut(serializers.Serializer):
    number = serializers.CharField()
    supplier = serializers.CharField(source="supplier.code")
    location = serializers.CharField(source="location.code")
    state = serializers.CharField()
    lines = serializers.SerializerMethodField()

    def get_lines(self, order) -> list[dict]:
        lines = order.lines.select_related("article").order_by("line_no")
        return PurchaseOrderLineOut(lines, many=True).data


class Skipped(serializers.Serializer):
    suggestion = serializers.IntegerField()
    reason = serializers.CharField()


class DraftOut(serializers.Serializer):
    orders = PurchaseOrderOut(many=True)
    skipped = Skipped(many=True)


class ReceiveOut(serializers.Serializer):
    number = serializers.CharField()
    state = serializers.CharField()
    delivery_note = serializers.CharField()
    duplicate = serializers.BooleanField()
    move_ids = serializers.DictField(child=serializers.IntegerField(), help_text="stock move id per line no.")


class CustomerHistoryOut(serializers.Serializer):
    customer = Customer()
    totals = CustomerTotals()
    articles = CustomerArticle(many=True)
    receipts = CustomerReceipt(many=True)


class RecommendationsOut(serializers.Serializer):
    customer_no = serializers.CharField()
    results = Recommendation(many=True)
