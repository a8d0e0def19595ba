"""Admin for the retail app: scale layouts, live sales (with their price
flags), RFID reads, transfer orders (ship / receive / cancel actions) and
the central stock matrix page. Lists use annotated querysets (no N+1);
actions call services and report with message_user."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Sum
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from posinv.admin import ReadOnlyAdminMixin
from posinv.exceptions import DomainError
from posinv.models import Location
from posinv.services.ledger import StockOrigin
from retail.models import LiveSale, RfidRead, ScaleLayout, StockMatrix, TransferLine, TransferOrder, TransferReceipt
from retail.selectors import stock_matrix
from retail.services.rfid import rfid_read_post
from retail.services.transfers import transfer_cancel, transfer_number_assign, transfer_receive, transfer_ship


@admin.register(ScaleLayout)
class ScaleLayoutAdmin(admin.ModelAdmin):
    list_display = ["prefix", "pattern", "content", "item_digits", "has_verifier", "active"]
    list_filter = ["content", "has_verifier", "active"]
    search_fields = ["prefix"]


@admin.register(LiveSale)
class LiveSaleAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "register",
        "idempotency_key",
        "receipt_link",
        "line_count",
        "total",
        "flagged",
        "flag_summary",
        "replays",
    ]
    list_filter = ["flagged", "register"]
    search_fields = ["idempotency_key", "receipt__receipt_no"]
    list_select_related = ["register", "receipt"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "register",
        "idempotency_key",
        "request_hash",
        "receipt",
        "response",
        "flags",
        "flagged",
        "line_count",
        "total",
        "created_at",
        "replays",
    ]

    @admin.display(description="price flags")
    def flag_summary(self, obj):
        return "; ".join(f"line {f['line_no']}: {f['sent']} vs {f['expected'] or 'no price'}" for f in obj.flags)

    @admin.display(description="receipt", ordering="receipt__receipt_no")
    def receipt_link(self, obj):
        url = reverse("admin:pos_receipt_change", args=[obj.receipt_id])
        return format_html('<a href="{}">{}</a>', url, obj.receipt.receipt_no)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RfidRead)
class RfidReadAdmin(admin.ModelAdmin):
    list_display = [
        "read_at",
        "location",
        "read_id",
        "reader",
        "epc_count",
        "decoded_count",
        "unknown_count",
        "articles_counted",
    ]
    list_filter = ["location"]
    search_fields = ["read_id", "reader"]
    list_select_related = ["location"]
    date_hierarchy = "read_at"
    readonly_fields = [
        "location",
        "read_id",
        "reader",
        "read_at",
        "epc_count",
        "decoded_count",
        "unknown_count",
        "articles_counted",
        "result",
        "created_at",
    ]

    def has_change_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        """Post a read exported from a handheld: a location and the EPCs, one per line."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RfidReadForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                read, created = rfid_read_post(
                    location_code=form.cleaned_data["location"].code,
                    epcs=form.cleaned_data["epcs"],
                    read_id=form.cleaned_data["read_id"],
                    reader=form.cleaned_data["reader"],
                    origin=StockOrigin(kind="user", code=request.user.get_username()),
                )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                articles = read.result.get("articles", [])
                self.message_user(
                    request,
                    f"RFID read {read.read_id}: {read.decoded_count} tag(s), {len(articles)} article(s) counted, "
                    f"{read.unknown_count} not understood" + ("" if created else " (sent before: nothing moved)"),
                    messages.SUCCESS if created else messages.WARNING,
                )
                return redirect("admin:retail_rfidread_change", read.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Post an RFID read",
            "opts": self.model._meta,
            "form": form,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "retail/rfid_read_add.html", context)


class RfidReadForm(forms.Form):
    location = forms.ModelChoiceField(queryset=Location.objects.filter(active=True).order_by("code"))
    read_id = forms.CharField(max_length=80, required=False, help_text="Optional; the same id again moves nothing.")
    reader = forms.CharField(max_length=80, required=False)
    epcs = forms.CharField(widget=forms.Textarea(attrs={"rows": 12, "cols": 40}), help_text="One EPC (hex) per line.")

    def clean_epcs(self) -> list[str]:
        # The field is required and stripped, so at least one line has an EPC.
        return [line.strip() for line in self.cleaned_data["epcs"].splitlines() if line.strip()]


class TransferLineInline(admin.TabularInline):
    model = TransferLine
    extra = 1
    fields = ["line_no", "article", "quantity", "received_qty"]
    readonly_fields = ["received_qty"]
    raw_id_fields = ["article"]

    def _editable(self, obj) -> bool:
        return obj is None or obj.status == TransferOrder.Status.DRAFT

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class TransferReceiptInline(admin.TabularInline):
    model = TransferReceipt
    extra = 0
    fields = ["seq", "key", "quantities", "received_by", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TransferOrder)
class TransferOrderAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "source",
        "destination",
        "status",
        "line_total",
        "quantity_total",
        "received_total",
        "created_at",
        "shipped_at",
        "received_at",
    ]
    list_filter = ["status", "source", "destination"]
    search_fields = ["number", "note"]
    list_select_related = ["source", "destination"]
    readonly_fields = ["number", "status", "created_by", "created_at", "shipped_at", "received_at"]
    fields = [
        "number",
        "source",
        "destination",
        "note",
        "status",
        "created_by",
        "created_at",
        "shipped_at",
        "received_at",
    ]
    inlines = [TransferLineInline, TransferReceiptInline]
    actions = ["ship", "receive_outstanding", "cancel"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_lines=Count("lines"), _quantity=Sum("lines__quantity"), _received=Sum("lines__received_qty"))
        )

    @admin.display(description="lines", ordering="_lines")
    def line_total(self, obj):
        return obj._lines

    @admin.display(description="quantity", ordering="_quantity")
    def quantity_total(self, obj):
        return obj._quantity

    @admin.display(description="received", ordering="_received")
    def received_total(self, obj):
        return obj._received

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != TransferOrder.Status.DRAFT:
            return [*self.readonly_fields, "source", "destination"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)
        if not change:
            transfer_number_assign(order=obj)

    def _each(self, request, queryset, step, done: str):
        ok = 0
        for number in queryset.order_by("pk").values_list("number", flat=True):
            try:
                step(number)
                ok += 1
            except DomainError as exc:
                self.message_user(request, f"{number}: {exc}", messages.ERROR)
        if ok:
            self.message_user(request, f"{ok} transfer order(s) {done}.", messages.SUCCESS)

    @admin.action(description="Ship (stock leaves the source)")
    def ship(self, request, queryset):
        self._each(request, queryset, lambda n: transfer_ship(number=n, user=request.user.get_username()), "shipped")

    @admin.action(description="Receive everything outstanding (stock arrives)")
    def receive_outstanding(self, request, queryset):
        self._each(
            request, queryset, lambda n: transfer_receive(number=n, user=request.user.get_username()), "received"
        )

    @admin.action(description="Cancel draft")
    def cancel(self, request, queryset):
        self._each(request, queryset, lambda n: transfer_cancel(number=n), "cancelled")


@admin.register(StockMatrix)
class StockMatrixAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Articles by locations, one page; filters by category, location kind and below reorder point."""

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        params = request.GET
        try:
            page = int(params.get("page", "1"))
        except ValueError:
            page = 1
        matrix = stock_matrix(
            category=params.get("category", ""),
            location_kind=params.get("kind", ""),
            below_reorder=params.get("below") == "1",
            search=params.get("q", "").strip(),
            page=page,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Stock matrix",
            "opts": self.model._meta,
            "matrix": matrix,
            "kinds": Location.Kind.choices,
            "selected": {
                "category": params.get("category", ""),
                "kind": params.get("kind", ""),
                "below": params.get("below") == "1",
                "q": params.get("q", ""),
            },
            **(extra_context or {}),
        }
        return TemplateResponse(request, "retail/stock_matrix.html", context)
