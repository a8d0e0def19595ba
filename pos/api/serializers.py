"""Input and output shapes of the pos API (the register contract of DESIGN.md)."""
from __future__ import annotations

from rest_framework import serializers

from pos.models import SyncTable
from posinv.api.fields import AmountField, QuantityField, TimeField

MONEY = {"max_digits": 14, "decimal_places": 2}
QUANTITY = {"max_digits": 14, "decimal_places": 3}


class EntryIn(serializers.Serializer):
    entry_no = serializers.IntegerField(min_value=1)
    table = serializers.CharField(
        max_length=64,
        help_text=f"One of {', '.join(SyncTable.values)}; an entry of a table this main system does not know "
        "is kept failed (`failures`), it does not refuse the batch",
    )
    record_id = serializers.CharField(max_length=200)
    record = serializers.DictField(help_text="The record in the table's shape (DESIGN.md)")


class EntryBatchIn(serializers.Serializer):
    """Documentation of the batch; validation is the contract's own (pos.services.shapes)."""

    entries = EntryIn(many=True)


class EntryFailureOut(serializers.Serializer):
    entry_no = serializers.IntegerField()
    record_id = serializers.CharField()
    field = serializers.CharField()
    code = serializers.CharField()
    reason = serializers.CharField()


class EntryBatchOut(serializers.Serializer):
    applied = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    failed = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="held behind a missing entry no.")
    released = serializers.IntegerField(help_text="earlier waiting entries applied by this batch")
    conflict = serializers.IntegerField()
    failures = EntryFailureOut(many=True)
    duplicates = serializers.ListField(child=serializers.DictField(), help_text="the first result of each duplicate")
    conflicts = serializers.ListField(child=serializers.DictField())
    last_applied_entry_no = serializers.IntegerField()
    missing = serializers.DictField(allow_null=True, help_text='{"from": n, "through": m} when a gap holds entries')


class RegisterSettingsOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    location = serializers.CharField(source="location.code")
    location_name = serializers.CharField(source="location.name")
    sync_type = serializers.CharField()
    tables = serializers.ListField(child=serializers.CharField())
    records_per_run = serializers.IntegerField()
    interval_seconds = serializers.IntegerField()
    currency = serializers.CharField()
    last_applied_entry_no = serializers.IntegerField()


class RegisterStatusOut(RegisterSettingsOut):
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    missing = serializers.DictField(allow_null=True)
    entries = serializers.DictField(child=serializers.IntegerField(), help_text="entries by state")
    receipts = serializers.IntegerField()


class ReceiptLineOut(serializers.Serializer):
    line_no = serializers.IntegerField()
    sku = serializers.CharField()
    barcode = serializers.CharField()
    quantity = serializers.DecimalField(**QUANTITY)
    unit_price = serializers.DecimalField(**MONEY)
    discount = serializers.DecimalField(**MONEY)
    stock_move_id = serializers.IntegerField(allow_null=True)


class PaymentLineOut(serializers.Serializer):
    line_no = serializers.IntegerField()
    method = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)


class ReceiptOut(serializers.Serializer):
    receipt_no = serializers.CharField()
    register = serializers.CharField(source="register.code")
    process_no = serializers.CharField(source="process.process_no", allow_null=True, default=None)
    customer_no = serializers.CharField(source="customer.customer_no", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    total = serializers.DecimalField(**MONEY)
    currency = serializers.CharField()
    source = serializers.CharField()
    lines = ReceiptLineOut(many=True)
    payments = PaymentLineOut(many=True)


class LineIn(serializers.Serializer):
    line_no = serializers.IntegerField(min_value=1)
    sku = serializers.CharField(max_length=64)
    barcode = serializers.CharField(max_length=14, required=False, default="", allow_blank=True)
    quantity = QuantityField()
    unit_price = AmountField()
    discount = AmountField(required=False, default="0")


class PaymentIn(serializers.Serializer):
    line_no = serializers.IntegerField(min_value=1)
    method = serializers.CharField(max_length=32)
    amount = AmountField()


class CustomerIn(serializers.Serializer):
    customer_no = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    email = serializers.EmailField(required=False, default="", allow_blank=True)
    card_no = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)


class TillReceiptIn(serializers.Serializer):
    """A sale as the till software sends it to its register node."""

    receipt_no = serializers.CharField(max_length=40)
    created_at = TimeField()
    process_no = serializers.CharField(max_length=40, required=False, allow_null=True, default=None)
    cashier = serializers.CharField(max_length=80, required=False, default="", allow_blank=True)
    total = AmountField(required=False, allow_null=True, default=None)
    currency = serializers.CharField(min_length=3, max_length=3, required=False, allow_null=True, default=None)
    customer = CustomerIn(required=False, allow_null=True, default=None)
    lines = LineIn(many=True, allow_empty=False, max_length=1000)
    payments = PaymentIn(many=True, required=False, default=list)


class TillReceiptOut(serializers.Serializer):
    receipt_no = serializers.CharField()
    duplicate = serializers.BooleanField()
    entry_nos = serializers.ListField(child=serializers.IntegerField())


class ProcessIn(serializers.Serializer):
    process_no = serializers.CharField(max_length=40)
    opened_at = TimeField()
    cashier = serializers.CharField(max_length=80, required=False, default="", allow_blank=True)


class ProcessCloseIn(serializers.Serializer):
    closed_at = TimeField()


class StockCountIn(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    counted_qty = QuantityField(help_text="The quantity found, not negative.")
    counted_at = TimeField()


class OutboxQueryIn(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=10000, default=500)


class OutboxAckIn(serializers.Serializer):
    through = serializers.IntegerField(min_value=0)


class OutboxEntryOut(serializers.Serializer):
    entry_no = serializers.IntegerField()
    table = serializers.CharField()
    record_id = serializers.CharField()
    record = serializers.DictField()


class OutboxPageOut(serializers.Serializer):
    register = serializers.CharField()
    entries = OutboxEntryOut(many=True)
    last_entry_no = serializers.IntegerField(help_text="the newest entry no. written on the node")
    more = serializers.BooleanField(help_text="entries after this page exist")


class OutboxAckOut(serializers.Serializer):
    through = serializers.IntegerField()
    marked = serializers.IntegerField(help_text="entries marked delivered by this acknowledgement")
