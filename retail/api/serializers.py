"""Input and output shapes of the retail API. Inputs validate; outputs
describe the answers for the OpenAPI schema. No business logic here."""

from __future__ import annotations

import re
from decimal import Decimal

from rest_framework import serializers

from posinv.api.fields import AmountField, QuantityField, TimeField
from posinv.api.serializers import ErrorsOut  # noqa: F401 - the one error shape, re-exported for the views
from posinv.models import Location
from retail.models import TransferOrder


class ArticleBriefOut(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    category = serializers.CharField()


class ScanOut(serializers.Serializer):
    code = serializers.CharField(help_text="The code as scanned.")
    kind = serializers.CharField(
        help_text="EAN-8, UPC-A, EAN-13, GTIN-14 (with ' pack' for pack barcodes), scale-weight or scale-price."
    )
    gtin = serializers.CharField(help_text="The code normalized to GTIN-14.")
    article = ArticleBriefOut()
    quantity = serializers.DecimalField(
        max_digits=14, decimal_places=3, help_text="Article units one scan stands for (pack size, kg on a label)."
    )
    weight_g = serializers.IntegerField(allow_null=True, help_text="Weight printed on a scale label.")
    unit_price = serializers.DecimalField(
        max_digits=14, decimal_places=2, allow_null=True, help_text="Price valid today in the register's price group."
    )
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        allow_null=True,
        help_text="What one scan costs (label price for price labels).",
    )
    currency = serializers.CharField()
    location = serializers.CharField()
    on_hand = serializers.DecimalField(max_digits=14, decimal_places=3)
    available = serializers.DecimalField(
        max_digits=14, decimal_places=3, help_text="On hand less quantities promised to draft transfer orders."
    )


class SaleLineIn(serializers.Serializer):
    code = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="A scanned barcode.")
    sku = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="Or the article's SKU.")
    quantity = QuantityField(help_text="Scans (negative = return: stock goes back).")
    price = AmountField(help_text="Price charged per scan.")
    discount = AmountField(required=False, default=0)


class SalePaymentIn(serializers.Serializer):
    method = serializers.CharField(max_length=32)
    amount = AmountField()


class SaleCustomerIn(serializers.Serializer):
    customer_no = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    card_no = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class SaleIn(serializers.Serializer):
    lines = SaleLineIn(many=True, allow_empty=False)
    payments = SalePaymentIn(many=True, required=False, default=list)
    customer = SaleCustomerIn(required=False, allow_null=True, default=None)
    receipt_no = serializers.CharField(
        max_length=40, required=False, allow_blank=False, help_text="Default: derived from the Idempotency-Key."
    )


def sale_in_plain(data) -> dict | None:
    """What `SaleIn` validates a sale body to, for the plain shape a till
    sends: lines and payments with numbers as strings or integers within
    SaleIn's digits, trimmed strings within its lengths, no customer. A sale
    is the hottest request (docs/retail.md) and building the nested
    serializer costs more than the rest of its Python; anything else returns
    None and goes through `SaleIn`, so every error message is SaleIn's own."""
    if not isinstance(data, dict) or not data.keys() <= {"lines", "payments", "receipt_no"}:
        return None
    lines, payments = data.get("lines"), data.get("payments", [])
    if not isinstance(lines, list) or not lines or not isinstance(payments, list):
        return None
    plain_lines = []
    for line in lines:
        if not isinstance(line, dict) or not line.keys() <= _LINE_KEYS or not line.keys() >= {"quantity", "price"}:
            return None
        code, sku = line.get("code", ""), line.get("sku", "")
        quantity, price = _plain_number(line["quantity"], _QUANTITY), _plain_number(line["price"], _MONEY)
        discount = _plain_number(line["discount"], _MONEY) if "discount" in line else 0
        if None in (quantity, price, discount) or not (_plain_text(code, 32) and _plain_text(sku, 64)):
            return None
        plain = {"quantity": quantity, "price": price, "discount": discount}
        plain.update({key: line[key] for key in ("code", "sku") if key in line})
        plain_lines.append(plain)
    plain_payments = []
    for payment in payments:
        if not isinstance(payment, dict) or payment.keys() != {"method", "amount"}:
            return None
        amount = _plain_number(payment["amount"], _MONEY)
        if amount is None or not payment["method"] or not _plain_text(payment["method"], 32):
            return None
        plain_payments.append({"method": payment["method"], "amount": amount})
    plain = {"lines": plain_lines, "payments": plain_payments, "customer": None}
    if "receipt_no" in data:
        if not data["receipt_no"] or not _plain_text(data["receipt_no"], 40):
            return None
        plain["receipt_no"] = data["receipt_no"]
    return plain


_LINE_KEYS = {"code", "sku", "quantity", "price", "discount"}
# SaleLineIn's bounded fields (posinv/bounds.py): at most 9 whole digits, 3
# (quantity) or 2 (money) after the point.
_QUANTITY = (re.compile(r"-?\d{1,9}(\.\d{1,3})?"), Decimal("0.001"))
_MONEY = (re.compile(r"-?\d{1,9}(\.\d{1,2})?"), Decimal("0.01"))


def _plain_number(value, kind) -> Decimal | None:
    pattern, places = kind
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return Decimal(text).quantize(places) if pattern.fullmatch(text) else None


def _plain_text(value, max_length: int) -> bool:
    # Printable also keeps out what CharField refuses: NUL and surrogates.
    return isinstance(value, str) and len(value) <= max_length and value == value.strip() and value.isprintable()


class SaleLineOut(serializers.Serializer):
    line_no = serializers.IntegerField()
    sku = serializers.CharField()
    code = serializers.CharField(allow_null=True)
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, help_text="Article units moved.")
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    on_hand = serializers.DecimalField(
        max_digits=14, decimal_places=3, help_text="On hand at the register's location right after this line."
    )


class PriceFlagOut(serializers.Serializer):
    line_no = serializers.IntegerField()
    field = serializers.CharField()
    code = serializers.ChoiceField(choices=["price_mismatch", "no_master_price"])
    sent = serializers.CharField()
    expected = serializers.CharField(allow_null=True)
    reason = serializers.CharField()


class SaleOut(serializers.Serializer):
    receipt_no = serializers.CharField()
    register = serializers.CharField()
    location = serializers.CharField()
    created_at = serializers.DateTimeField()
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    lines = SaleLineOut(many=True)
    flags = PriceFlagOut(many=True, help_text="Prices that disagree with master data (accepted, flagged).")


class RfidReadIn(serializers.Serializer):
    epcs = serializers.ListField(child=serializers.CharField(max_length=128, allow_blank=True), allow_empty=False)
    read_id = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    reader = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    read_at = TimeField(required=False, allow_null=True, default=None)
    location = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        default="",
        help_text="Staff only; a register token reads at its own location.",
    )


class RfidReadOut(serializers.Serializer):
    read_id = serializers.CharField()
    location = serializers.CharField(source="location.code")
    read_at = serializers.DateTimeField()
    epc_count = serializers.IntegerField()
    decoded_count = serializers.IntegerField()
    unknown_count = serializers.IntegerField()
    articles_counted = serializers.IntegerField()
    result = serializers.JSONField()


class TransferLineIn(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = QuantityField(min_value=Decimal("0.001"))


class TransferIn(serializers.Serializer):
    source = serializers.CharField(max_length=32)
    destination = serializers.CharField(max_length=32)
    lines = TransferLineIn(many=True, allow_empty=False)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ReceiveLineIn(serializers.Serializer):
    line_no = serializers.IntegerField(min_value=1)
    quantity = QuantityField(min_value=Decimal("0.001"))


class ReceiveIn(serializers.Serializer):
    key = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    lines = ReceiveLineIn(
        many=True,
        required=False,
        allow_null=True,
        default=None,
        help_text="Omit to receive everything outstanding.",
    )

    def validate_lines(self, lines):
        seen = set()
        for index, line in enumerate(lines or ()):
            if line is None:
                raise serializers.ValidationError({index: ["A line cannot be null."]})
            if line["line_no"] in seen:
                raise serializers.ValidationError(f"line no. {line['line_no']} is given twice")
            seen.add(line["line_no"])
        return lines


class TransferLineOut(serializers.Serializer):
    line_no = serializers.IntegerField()
    sku = serializers.CharField(source="article.sku")
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3)
    received_qty = serializers.DecimalField(max_digits=14, decimal_places=3)


class TransferOut(serializers.ModelSerializer):
    source = serializers.CharField(source="source.code")
    destination = serializers.CharField(source="destination.code")
    lines = TransferLineOut(many=True)

    class Meta:
        model = TransferOrder
        fields = [
            "number",
            "source",
            "destination",
            "status",
            "note",
            "created_by",
            "created_at",
            "shipped_at",
            "received_at",
            "lines",
        ]


class StockMatrixQuery(serializers.Serializer):
    category = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Location.Kind.choices, required=False, allow_blank=True, default="")
    below = serializers.BooleanField(required=False, default=False)
    q = serializers.CharField(required=False, allow_blank=True, default="")
    page = serializers.IntegerField(required=False, min_value=1, default=1)


class MatrixLocationOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class MatrixCellOut(serializers.Serializer):
    on_hand = serializers.DecimalField(max_digits=14, decimal_places=3, allow_null=True)
    reorder_point = serializers.DecimalField(max_digits=14, decimal_places=3, allow_null=True)
    below = serializers.BooleanField()


class MatrixRowOut(serializers.Serializer):
    sku = serializers.CharField(source="article.sku")
    name = serializers.CharField(source="article.name")
    category = serializers.CharField(source="article.category")
    cells = MatrixCellOut(many=True, help_text="One per location, in the order of `locations`.")
    total = serializers.DecimalField(max_digits=16, decimal_places=3)


class StockMatrixOut(serializers.Serializer):
    locations = MatrixLocationOut(many=True)
    rows = MatrixRowOut(many=True)
    total_articles = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
