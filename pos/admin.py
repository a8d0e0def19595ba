"""Admin of the pos app: Data Transfer → Synchronization. Registers are set
up here (General: location and code; Settings: type, tables, records per
run); their entries show every record that travels with its state, and the
actions Synchronize, Retry and Export call the services. Lists are
annotated so they cost a fixed number of queries."""
from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Min, OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from pos.models import (
    CashRegister,
    Customer,
    PaymentLine,
    PosProcess,
    Receipt,
    ReceiptLine,
    StockCount,
    SyncConflict,
    SyncEntry,
    SyncTable,
)
from pos.services.apply import entries_advance, entries_retry, entries_skip
from pos.services.entries import pos_process_export, receipt_export
from pos.services.node import MainUnreachable, is_node, outbox_retry_failed, register_push
from pos.services.transfer import (
    NodeUnreachable,
    register_synchronize,
    register_token_copy_prune,
    register_token_rotate,
)
from posinv.exceptions import DomainError


def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )


def synchronize(request, registers) -> None:
    """Synchronize each register now and report per register."""
    for register in registers:
        try:
            if is_node():
                counts = register_push()
                message = (
                    f"{register.code}: sent {counts['sent']} entries in {counts['calls']} calls "
                    f"({counts['applied']} applied, {counts['duplicate']} duplicate, {counts['failed']} failed)"
                )
            else:
                message = register_synchronize(register_id=register.pk)
        except (MainUnreachable, NodeUnreachable) as exc:
            messages.error(request, f"{register.code}: unreachable: {exc}")
            continue
        except DomainError as exc:
            messages.error(request, f"{register.code}: {exc}")
            continue
        messages.success(request, message)


class CashRegisterForm(forms.ModelForm):
    tables = forms.MultipleChoiceField(
        choices=SyncTable.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Tables that take part in the transfer; a disabled table produces no entries.",
    )

    class Meta:
        model = CashRegister
        fields = "__all__"

    def clean_tables(self):
        chosen = self.cleaned_data["tables"]
        return [table for table in SyncTable.values if table in chosen]


@admin.register(CashRegister)
class CashRegisterAdmin(admin.ModelAdmin):
    form = CashRegisterForm
    list_display = (
        "code", "name", "location", "type_short", "records_per_run", "interval_seconds", "last_applied_entry_no",
        "pending_or_waiting", "failed_entries", "gap", "last_success_at", "error_short", "pull_token", "entries_link",
    )
    list_filter = ("sync_type", "active", "location")
    search_fields = ("code", "name", "location__code")
    autocomplete_fields = ("location",)
    actions = ["synchronize_action", "retry_action", "rotate_token_action"]
    fieldsets = (
        ("General", {"fields": ("location", "code", "name", "active")}),
        ("Settings", {"fields": ("sync_type", "tables", "records_per_run", "interval_seconds", "node_url",
                                 "price_group", "currency")}),
        ("State", {"fields": ("last_applied_entry_no", "next_entry_no", "last_attempt_at", "last_success_at",
                              "last_error", "last_error_at", "settings_fetched_at", "retry_after",
                              "failures_in_row")}),
    )
    readonly_fields = ("last_applied_entry_no", "next_entry_no", "last_attempt_at", "last_success_at",
                       "last_error", "last_error_at", "settings_fetched_at", "retry_after", "failures_in_row")

    def get_queryset(self, request):
        entries = SyncEntry.objects.filter(register=OuterRef("pk")).order_by().values("register")
        return (
            super()
            .get_queryset(request)
            .select_related("location")
            .annotate(
                n_open=Count("entries", filter=Q(entries__state__in=["pending", "waiting"])),
                n_failed=Count("entries", filter=Q(entries__state="failed")),
                first_waiting=Subquery(
                    entries.filter(state="waiting", direction="in").annotate(m=Min("entry_no")).values("m")[:1]
                ),
            )
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # A register switched to push keeps no encrypted copy of its token.
        if register_token_copy_prune(register_id=obj.pk):
            obj.pull_token_encrypted = ""

    @admin.action(description="Rotate token (shows the new token once)")
    def rotate_token_action(self, request, queryset):
        for register in queryset:
            raw = register_token_rotate(register_id=register.pk)
            self.message_user(
                request,
                format_html("New token for register {}: <code>{}</code> (copy it now to the register node's "
                            "POSINV_REGISTER_TOKEN; it is not shown again)", register.code, raw),
                messages.WARNING,
            )

    @admin.display(description="type", ordering="sync_type")
    def type_short(self, obj):
        return obj.sync_type

    @admin.display(description="pending / waiting", ordering="n_open")
    def pending_or_waiting(self, obj):
        return obj.n_open

    @admin.display(description="failed", ordering="n_failed")
    def failed_entries(self, obj):
        if not obj.n_failed:
            return 0
        url = reverse("admin:pos_syncentry_changelist") + "?" + urlencode({"register__id__exact": obj.pk,
                                                                          "state__exact": "failed"})
        return format_html('<a href="{}" style="color:#ba2121;font-weight:bold">{}</a>', url, obj.n_failed)

    @admin.display(description="missing entries")
    def gap(self, obj):
        first = obj.first_waiting
        if first is None or first == obj.last_applied_entry_no + 1:
            return "—"
        return format_html('<span style="color:#ba2121">{}–{}</span>', obj.last_applied_entry_no + 1, first - 1)

    @admin.display(description="last error")
    def error_short(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.display(description="pull token")
    def pull_token(self, obj):
        # Whether a copy is there, never the copy itself (ciphertext stays out of pages).
        if obj.sync_type != CashRegister.SyncType.PULL:
            return "—"
        if obj.pull_token_encrypted:
            return "stored"
        return format_html('<span style="color:#ba2121">{}</span>', "missing: rotate the token")

    @admin.display(description="entries")
    def entries_link(self, obj):
        url = reverse("admin:pos_syncentry_changelist") + "?" + urlencode({"register__id__exact": obj.pk})
        return format_html('<a href="{}">Entries</a>', url)

    @admin.action(description="Synchronize now")
    def synchronize_action(self, request, queryset):
        synchronize(request, queryset)

    def has_retry_permission(self, request):
        return request.user.has_perm("pos.retry_syncentry")

    @admin.action(description="Retry failed entries", permissions=["retry"])
    def retry_action(self, request, queryset):
        for register in queryset:
            if is_node():
                self.message_user(request, f"{register.code}: {outbox_retry_failed(register_id=register.pk)} "
                                  "refused entries will be sent again")
                continue
            counts = entries_retry(register_id=register.pk)
            advanced = entries_advance(register_id=register.pk)
            level = messages.SUCCESS if not counts["failed"] else messages.WARNING
            self.message_user(
                request,
                f"{register.code}: {counts['applied']} applied, {counts['failed']} still failed"
                + (f", {advanced} waiting entries applied" if advanced else ""),
                level,
            )


@admin.register(SyncEntry)
class SyncEntryAdmin(admin.ModelAdmin):
    list_display = ("entry_no", "register", "direction_short", "table", "record_id", "state_badge", "attempts",
                    "error_short", "created_at")
    list_filter = ("state", "direction", "table", "register")
    search_fields = ("record_id", "register__code")
    list_select_related = ("register",)
    ordering = ("register", "direction", "-entry_no")
    actions = ["synchronize_action", "retry_action", "skip_action"]
    readonly_fields = ("register", "direction", "entry_no", "table", "record_id", "record_pretty", "record_hash",
                       "state", "attempts", "last_error", "result_pretty", "created_at", "done_at")
    fields = readonly_fields
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the entry-no. sequence is the transfer's memory

    @admin.display(description="record")
    def record_pretty(self, obj):
        return pretty_json(obj.record)

    @admin.display(description="direction", ordering="direction")
    def direction_short(self, obj):
        return "received" if obj.direction == SyncEntry.Direction.IN else "outbox"

    @admin.display(description="result")
    def result_pretty(self, obj):
        return pretty_json(obj.result) if obj.result is not None else "—"

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        colour = {"failed": "#ba2121", "waiting": "#b26b00", "pending": "#666", "applied": "#2a7d2a",
                  "delivered": "#2a7d2a", "skipped": "#555"}[obj.state]
        return format_html('<b style="color:{}">{}</b>', colour, obj.get_state_display())

    @admin.display(description="last error")
    def error_short(self, obj):
        return (obj.last_error[:100] + "…") if len(obj.last_error) > 100 else obj.last_error

    @admin.action(description="Synchronize (the registers of the selected entries)")
    def synchronize_action(self, request, queryset):
        ids = set(queryset.values_list("register_id", flat=True))
        synchronize(request, CashRegister.objects.filter(pk__in=ids).order_by("code"))

    def has_retry_permission(self, request):
        return request.user.has_perm("pos.retry_syncentry")

    def has_skip_permission(self, request):
        return request.user.has_perm("pos.skip_syncentry")

    @staticmethod
    def _failed_by_register(queryset) -> dict[int, list[int]]:
        by_register: dict[int, list[int]] = {}
        for pk, register_id in queryset.filter(state=SyncEntry.State.FAILED).values_list("pk", "register_id"):
            by_register.setdefault(register_id, []).append(pk)
        return by_register

    @admin.action(description="Retry the selected failed entries", permissions=["retry"])
    def retry_action(self, request, queryset):
        by_register = self._failed_by_register(queryset)
        if not by_register:
            self.message_user(request, "None of the selected entries has failed.", messages.WARNING)
            return
        for register_id, ids in by_register.items():
            if is_node():
                sent = outbox_retry_failed(register_id=register_id, entry_ids=ids)
                self.message_user(request, f"{sent} refused entries will be sent again with the next push")
                continue
            counts = entries_retry(register_id=register_id, entry_ids=ids)
            entries_advance(register_id=register_id)
            level = messages.SUCCESS if not counts["failed"] else messages.WARNING
            self.message_user(request, f"{counts['applied']} applied, {counts['failed']} still failed", level)


    @admin.action(description="Skip (park) the selected failed entries, with a reason", permissions=["skip"])
    def skip_action(self, request, queryset):
        """Asks for the reason first (an intermediate page), then parks the
        failed entries: they stop counting as failed and are never retried."""
        if is_node():
            self.message_user(request, "A register node sends every entry; skip failed entries on the main "
                              "system (it holds the others behind a missing one otherwise).", messages.ERROR)
            return None
        by_register = self._failed_by_register(queryset)
        if not by_register:
            self.message_user(request, "None of the selected entries has failed.", messages.WARNING)
            return None
        form = SkipForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            skipped = sum(
                entries_skip(register_id=register_id, entry_ids=ids, reason=form.cleaned_data["reason"],
                             user=request.user.get_username())
                for register_id, ids in by_register.items()
            )
            self.message_user(request, f"{skipped} entries skipped: {form.cleaned_data['reason']}")
            return None
        entries = list(queryset.filter(state=SyncEntry.State.FAILED).select_related("register")[:200])
        return TemplateResponse(request, "admin/pos/syncentry/skip.html", {
            **self.admin_site.each_context(request),
            "title": "Skip failed entries",
            "opts": self.model._meta,
            "entries": entries,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        })


class SkipForm(forms.Form):
    reason = forms.CharField(
        max_length=500, strip=True,
        help_text="Why these entries are not to be applied (say: booked by hand on 3 March). Kept on each entry.",
    )


@admin.register(SyncConflict)
class SyncConflictAdmin(admin.ModelAdmin):
    list_display = ("register", "entry_no", "table", "record_id", "received_at", "resolved")
    list_filter = ("resolved", "register")
    search_fields = ("record_id",)
    list_select_related = ("register",)
    readonly_fields = ("register", "entry_no", "table", "record_id", "record_pretty", "kept_pretty", "record_hash",
                       "received_at")
    fields = (*readonly_fields, "resolved")
    actions = ["mark_resolved"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="record received now")
    def record_pretty(self, obj):
        return pretty_json(obj.record)

    @admin.display(description="record kept (first received)")
    def kept_pretty(self, obj):
        kept = SyncEntry.objects.filter(register=obj.register, direction="in", entry_no=obj.entry_no).first()
        return pretty_json(kept.record) if kept else "—"

    @admin.action(description="Mark as resolved")
    def mark_resolved(self, request, queryset):
        self.message_user(request, f"{queryset.update(resolved=True)} conflicts marked resolved")


class ReceiptLineInline(admin.TabularInline):
    model = ReceiptLine
    fields = ("line_no", "sku", "article", "barcode", "quantity", "unit_price", "discount", "stock_move")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class PaymentLineInline(admin.TabularInline):
    model = PaymentLine
    fields = ("line_no", "method", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ExportViewMixin:
    """A POST-only admin URL `<pk>/export/` behind the card's Export button."""

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("<int:pk>/export/", self.admin_site.admin_view(self.export_view), name="{}_{}_export".format(*info)),
            *super().get_urls(),
        ]

    def export_view(self, request, pk: int):
        obj = get_object_or_404(self.model, pk=pk)
        change_url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[pk])
        if request.method != "POST" or not self.has_view_permission(request, obj):
            return HttpResponseRedirect(change_url)
        try:
            entries = self.export(obj, request)
        except DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(change_url)
        self.report_export(request, entries)
        return HttpResponseRedirect(change_url)

    def report_export(self, request, entries) -> None:
        if not entries:
            self.message_user(request, "Nothing exported: the register's tables exclude these records.",
                              messages.WARNING)
            return
        failed = [entry for entry in entries if entry.state == SyncEntry.State.FAILED]
        where = "to the outbox" if is_node() else "and applied again"
        self.message_user(
            request,
            f"Exported {len(entries)} entries (no. {entries[0].entry_no}–{entries[-1].entry_no}) {where}"
            + (f"; {len(failed)} failed" if failed else ""),
            messages.WARNING if failed else messages.SUCCESS,
        )


@admin.register(PosProcess)
class PosProcessAdmin(ExportViewMixin, admin.ModelAdmin):
    list_display = ("process_no", "register", "status", "cashier", "opened_at", "closed_at", "receipt_count")
    list_filter = ("status", "register")
    search_fields = ("process_no", "cashier")
    list_select_related = ("register",)
    readonly_fields = ("register", "process_no", "opened_at", "closed_at", "cashier", "status")
    change_form_template = "admin/pos/posprocess/change_form.html"
    actions = ["export_action", "export_with_receipts_action"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_receipts=Count("receipts"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # written by sales and synchronization only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="receipts", ordering="n_receipts")
    def receipt_count(self, obj):
        return obj.n_receipts

    def export(self, obj, request):
        return pos_process_export(process_id=obj.pk, include_receipts=request.POST.get("include_receipts") == "on")

    @admin.action(description="Export to the synchronization entries")
    def export_action(self, request, queryset):
        for process in queryset:
            self.report_export(request, pos_process_export(process_id=process.pk))

    @admin.action(description="Export with all related receipts")
    def export_with_receipts_action(self, request, queryset):
        for process in queryset:
            self.report_export(request, pos_process_export(process_id=process.pk, include_receipts=True))


@admin.register(Receipt)
class ReceiptAdmin(ExportViewMixin, admin.ModelAdmin):
    list_display = ("receipt_no", "register", "created_at", "total", "currency", "customer", "source", "line_count",
                    "lines_without_move")
    list_filter = ("source", "register", "created_at")
    search_fields = ("receipt_no", "customer__customer_no", "customer__name", "lines__sku")
    list_select_related = ("register", "customer")
    readonly_fields = ("register", "receipt_no", "process", "customer", "total", "currency", "created_at", "source",
                       "recorded_at")
    inlines = [ReceiptLineInline, PaymentLineInline]
    change_form_template = "admin/pos/receipt/change_form.html"
    date_hierarchy = "created_at"
    actions = ["export_action"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_lines=Count("lines"), n_unposted=Count("lines", filter=Q(lines__stock_move__isnull=True))
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # written by sales and synchronization only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="lines", ordering="n_lines")
    def line_count(self, obj):
        return obj.n_lines

    @admin.display(description="lines without stock move", ordering="n_unposted")
    def lines_without_move(self, obj):
        return obj.n_unposted

    def export(self, obj, request):
        return receipt_export(receipt_id=obj.pk)

    @admin.action(description="Export to the synchronization entries")
    def export_action(self, request, queryset):
        for receipt in queryset:
            self.report_export(request, receipt_export(receipt_id=receipt.pk))


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("customer_no", "name", "email", "card_no", "receipt_count")
    search_fields = ("customer_no", "name", "email", "card_no")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_receipts=Count("receipts"))

    @admin.display(description="receipts", ordering="n_receipts")
    def receipt_count(self, obj):
        return obj.n_receipts


@admin.register(StockCount)
class StockCountAdmin(admin.ModelAdmin):
    list_display = ("sku", "register", "counted_qty", "counted_at", "stock_move")
    list_filter = ("register",)
    search_fields = ("sku",)
    list_select_related = ("register",)
    readonly_fields = ("register", "sku", "article", "counted_qty", "counted_at", "stock_move")

    def has_add_permission(self, request):
        return False
