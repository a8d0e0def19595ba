"""Admin of the core: master data, the ledger (read-only moves, adjustments
through the ledger service), suggestions, job runs, leases and API tokens.

Lists are annotated so they cost a fixed number of queries whatever their
length; every write goes through a service."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import Count, DecimalField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX

from posinv.bounds import QUANTITY_MAX, QUANTITY_RANGE_TEXT
from posinv.exceptions import DomainError, InvalidInput
from posinv.models import (
    ApiToken,
    Article,
    Barcode,
    ChangeFailure,
    JobRun,
    Lease,
    Location,
    Price,
    PriceGroup,
    ReorderSuggestion,
    ScheduleState,
    StockChange,
    StockLevel,
    StockMove,
)
from posinv.plugins import extensions
from posinv.resources import ArticleResource, StockLevelResource
from posinv.scheduling import schedule_due_at
from posinv.services.adjustments import stock_adjust
from posinv.services.barcodes import gtin_normalize
from posinv.services.changes import change_failures_retry
from posinv.services.login_throttle import login_lockout_find
from posinv.services.runs import schedule_release
from posinv.services.shared_counters import client_address
from posinv.services.suggestions import suggestion_close
from posinv.services.tokens import token_issue

FILE_FORMATS = [CSV, XLSX]


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """The admin login form: while a username or address is locked out after
    failed logins (posinv/services/login_throttle.py) it says so, and for how
    long, instead of "wrong password" (the backend refused without checking it)."""

    def get_invalid_login_error(self):
        username = self.cleaned_data.get("username")
        address = client_address(self.request) if self.request is not None else None
        lockout = login_lockout_find(username=username, address=address) if username else None
        if lockout is not None:
            return ValidationError(lockout.message(), code="login_throttled")
        return super().get_invalid_login_error()


admin.site.login_form = ThrottledAdminLoginForm


class ReadOnlyAdminMixin:
    """Rows written only by services: shown, never added, edited or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "negative_stock", "active", "articles_in_stock")
    list_filter = ("kind", "negative_stock", "active")
    search_fields = ("code", "name")
    # Explicit because the Count annotation groups the query, and Django drops
    # Meta.ordering from GROUP BY queries: the autocomplete of every location
    # field would page an unordered list (UnorderedObjectListWarning).
    ordering = ("code",)

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(in_stock=Count("stock_levels", filter=~Q(stock_levels__on_hand=0)))
        )

    @admin.display(description="articles with stock", ordering="in_stock")
    def articles_in_stock(self, obj):
        return obj.in_stock


class BarcodeInline(admin.TabularInline):
    model = Barcode
    extra = 0
    fields = ("code", "gtin", "pack_qty")
    readonly_fields = ("gtin",)


class PriceInline(admin.TabularInline):
    model = Price
    extra = 0
    fields = ("group", "amount", "currency", "valid_from")


class StockLevelInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Stock of the article per location; changed only by the ledger."""

    model = StockLevel
    extra = 0
    fields = ("location", "on_hand", "reorder_point", "order_up_to", "updated_at", "adjust_link")
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("location")

    @admin.display(description="")
    def adjust_link(self, obj):
        url = reverse("admin:posinv_stocklevel_adjust") + f"?level={obj.pk}"
        return format_html('<a href="{}">Adjust…</a>', url)


class BarcodeForm(forms.ModelForm):
    class Meta:
        model = Barcode
        fields = ("article", "code", "pack_qty")

    def clean_code(self):
        code = self.cleaned_data["code"]
        try:
            gtin = gtin_normalize(code)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.problems[0].reason) from exc
        # gtin is not a form field, so the form's unique check cannot see it.
        taken = Barcode.objects.filter(gtin=gtin).exclude(pk=self.instance.pk).select_related("article").first()
        if taken:
            raise forms.ValidationError(f"barcode {code.strip()} already belongs to {taken.article.sku}")
        self.instance.gtin = gtin
        return code.strip()


BarcodeInline.form = BarcodeForm


@admin.register(Article)
class ArticleAdmin(ImportExportModelAdmin):
    resource_classes = [ArticleResource]
    import_formats = FILE_FORMATS
    export_formats = FILE_FORMATS
    list_display = ("sku", "name", "unit", "unit_weight_g", "category", "active", "barcode_count", "on_hand_total")
    list_filter = ("active", "category", "unit")
    search_fields = ("sku", "name", "barcodes__code", "=barcodes__gtin")
    inlines = [BarcodeInline, PriceInline, StockLevelInline]
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request):
        total = (
            StockLevel.objects.filter(article=OuterRef("pk"))
            .order_by()
            .values("article")
            .annotate(total=Sum("on_hand"))
            .values("total")
        )
        barcodes = (
            Barcode.objects.filter(article=OuterRef("pk"))
            .order_by()
            .values("article")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                on_hand_total=Coalesce(Subquery(total), Value(Decimal(0)), output_field=DecimalField()),
                barcode_count=Coalesce(Subquery(barcodes), Value(0)),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        """A scanned barcode in any GTIN form finds its article (UPC-A = EAN-13 with a 0)."""
        results, distinct = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit() and len(term) in (8, 12, 13, 14):
            try:
                gtin = gtin_normalize(term)
            except InvalidInput:
                return results, distinct
            results = results | queryset.filter(barcodes__gtin=gtin)
            distinct = True
        return results, distinct

    @admin.display(description="barcodes", ordering="barcode_count")
    def barcode_count(self, obj):
        return obj.barcode_count

    @admin.display(description="on hand (all locations)", ordering="on_hand_total")
    def on_hand_total(self, obj):
        return obj.on_hand_total


@admin.register(Barcode)
class BarcodeAdmin(admin.ModelAdmin):
    form = BarcodeForm
    list_display = ("code", "gtin", "article", "pack_qty")
    search_fields = ("code", "=gtin", "article__sku", "article__name")
    list_select_related = ("article",)
    autocomplete_fields = ("article",)


@admin.register(PriceGroup)
class PriceGroupAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "currency")
    search_fields = ("code", "name")


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("article", "group", "amount", "currency", "valid_from")
    list_filter = ("group", "currency")
    search_fields = ("article__sku", "article__name")
    list_select_related = ("article", "group")
    autocomplete_fields = ("article",)
    date_hierarchy = "valid_from"


class AdjustForm(forms.Form):
    """A manual correction: add a quantity, or state what was counted."""

    MODES = [("add", "Add (or remove, with a minus) a quantity"), ("count", "Set to the counted quantity")]

    sku = forms.CharField(label="SKU", max_length=64)
    location = forms.ModelChoiceField(queryset=Location.objects.filter(active=True))
    mode = forms.ChoiceField(choices=MODES, initial="add", widget=forms.RadioSelect)
    quantity = forms.DecimalField(
        max_digits=14, decimal_places=3, min_value=-QUANTITY_MAX, max_value=QUANTITY_MAX,
        help_text=f"{QUANTITY_RANGE_TEXT} (the system's quantity bound)",
    )
    reason = forms.CharField(max_length=200, help_text="Why stock is corrected (kept on the move).")
    key = forms.CharField(widget=forms.HiddenInput)

    def clean_sku(self):
        sku = self.cleaned_data["sku"].strip()
        article = Article.objects.filter(sku=sku).first()
        if article is None:
            raise forms.ValidationError(f"no article with SKU {sku!r}")
        self.article = article
        return sku


@admin.register(StockLevel)
class StockLevelAdmin(ExportMixin, admin.ModelAdmin):
    """Levels are read-only: stock changes through moves. "Adjust…" posts an
    adjustment or count with a reason through the ledger."""

    resource_classes = [StockLevelResource]
    export_formats = FILE_FORMATS
    list_display = ("article", "location", "on_hand", "reorder_point", "order_up_to", "updated_at", "adjust_link")
    list_filter = ("location", "location__kind")
    search_fields = ("article__sku", "article__name", "=article__barcodes__gtin", "article__barcodes__code")
    list_select_related = ("article", "location")
    fields = ("article", "location", "on_hand", "reorder_point", "order_up_to", "updated_at")
    readonly_fields = ("article", "location", "on_hand", "updated_at")
    actions = ["adjust_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="")
    def adjust_link(self, obj):
        return format_html('<a href="{}?level={}">Adjust…</a>', reverse("admin:posinv_stocklevel_adjust"), obj.pk)

    @admin.action(description="Adjust stock of the selected level…")
    def adjust_selected(self, request, queryset):
        levels = list(queryset.values_list("pk", flat=True)[:2])
        if len(levels) != 1:
            self.message_user(request, "Select exactly one stock level to adjust.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:posinv_stocklevel_adjust") + f"?level={levels[0]}")

    def get_urls(self):
        return [
            path("adjust/", self.admin_site.admin_view(self.adjust_view), name="posinv_stocklevel_adjust"),
            *super().get_urls(),
        ]

    def adjust_view(self, request):
        if not request.user.has_perm("posinv.change_stocklevel"):
            return HttpResponseRedirect(reverse("admin:index"))
        initial = {"key": f"admin-adjust:{uuid.uuid4()}", "mode": "add"}
        level = None
        if request.GET.get("level"):
            level = get_object_or_404(StockLevel.objects.select_related("article", "location"), pk=request.GET["level"])
            initial.update(sku=level.article.sku, location=level.location_id)
        form = AdjustForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = stock_adjust(
                    article_id=form.article.pk,
                    location_id=data["location"].pk,
                    reason=data["reason"],
                    username=request.user.get_username(),
                    idempotency_key=data["key"],
                    quantity=data["quantity"] if data["mode"] == "add" else None,
                    counted=data["quantity"] if data["mode"] == "count" else None,
                )
            except DomainError as exc:
                for problem in exc.problems:
                    name = problem.field if problem.field in form.fields else None
                    form.add_error(name, problem.reason)
            else:
                verb = "already posted" if result.status == "duplicate" else "posted"
                self.message_user(
                    request,
                    f"Move {verb}: {result.quantity:+f} of {data['sku']} at {data['location'].code}; "
                    f"on hand now {result.balance_after}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:posinv_stocklevel_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Adjust stock",
            "form": form,
            "level": level,
        }
        return TemplateResponse(request, "admin/posinv/stocklevel/adjust.html", context)


@admin.register(StockMove)
class StockMoveAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger's history: append-only. Corrections are new moves (Adjust…)."""

    list_display = (
        "id",
        "created_at",
        "kind",
        "article",
        "location",
        "quantity",
        "balance_after",
        "origin",
        "origin_code",
        "reference",
        "reason",
    )
    list_filter = ("kind", "origin", "location", "location__kind")
    search_fields = ("article__sku", "=article__barcodes__gtin", "idempotency_key", "reference", "origin_code")
    list_select_related = ("article", "location")
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting a long ledger on every page is slow


@admin.register(StockChange)
class StockChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The change outbox: rows waiting for the dispatcher. Normally empty or short."""

    list_display = ("id", "created_at", "article", "location", "on_hand", "origin", "origin_code")
    list_filter = ("origin", "location")
    list_select_related = ("article", "location")


@admin.register(ChangeFailure)
class ChangeFailureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Changes a consumer could not handle for one (article, location), skipped
    so the others keep flowing (docs/ledger.md). Fix the cause (the reason
    says what), then hand the pair's current level to the consumers again."""

    list_display = ("article", "location", "consumer", "on_hand", "reason", "failures", "last_failed_at")
    list_filter = ("consumer", "location")
    search_fields = ("article__sku", "reason")
    list_select_related = ("article", "location")
    actions = ["deliver_again"]

    def has_deliver_permission(self, request):
        return request.user.has_perm("posinv.change_changefailure")

    def has_delete_permission(self, request, obj=None):
        # Dismissing a record (say its consumer was removed) moves no stock.
        return request.user.has_perm("posinv.delete_changefailure")

    @admin.action(description="Deliver the selected pairs' current level again", permissions=["deliver"])
    def deliver_again(self, request, queryset):
        queued = change_failures_retry(failure_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{queued} pairs handed to the consumers again.", messages.SUCCESS)


@admin.register(ReorderSuggestion)
class ReorderSuggestionAdmin(admin.ModelAdmin):
    list_display = (
        "article",
        "location",
        "state",
        "source",
        "source_ref",
        "quantity_on_hand",
        "trigger_level",
        "suggested_quantity",
        "opened_at",
        "closed_at",
    )
    list_filter = ("state", "source", "location", "location__kind")
    search_fields = ("article__sku", "article__name", "source_ref")
    list_select_related = ("article", "location")
    readonly_fields = (
        "article",
        "location",
        "source",
        "source_ref",
        "quantity_on_hand",
        "trigger_level",
        "opened_at",
        "updated_at",
        "closed_at",
        "state",
    )
    actions = ["mark_ordered", "close"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Mark selected suggestions as ordered")
    def mark_ordered(self, request, queryset):
        changed = queryset.filter(state=ReorderSuggestion.State.OPEN).update(state=ReorderSuggestion.State.ORDERED)
        self.message_user(request, f"{changed} suggestions marked as ordered.", messages.SUCCESS)

    @admin.action(description="Close selected suggestions")
    def close(self, request, queryset):
        closed = 0
        for article_id, location_id in queryset.filter(state=ReorderSuggestion.State.OPEN).values_list(
            "article_id", "location_id"
        ):
            closed += suggestion_close(article_id=article_id, location_id=location_id)
        self.message_user(request, f"{closed} suggestions closed.", messages.SUCCESS)


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "subject", "status", "started_at", "finished_at", "counts", "short_error")
    list_filter = ("status", "name")
    search_fields = ("name", "subject", "error")
    date_hierarchy = "started_at"

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:120]


@admin.register(ScheduleState)
class ScheduleStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every periodic job and where it stands: when it is due next by the
    scheduler's rule, its failures in a row, a hold waiting for a person."""

    list_display = ("key", "last_outcome", "failures_in_row", "next_due", "held_since", "last_started_at",
                    "skipped_runs", "short_error", "runs")
    list_filter = ("last_outcome", "job", ("held_since", admin.EmptyFieldListFilter))
    search_fields = ("key", "subject", "last_error", "held_reason")
    actions = ["release"]

    @admin.display(description="due next")
    def next_due(self, obj):
        at = schedule_due_at(obj, obj.interval_seconds)
        if at is None:
            return "held: waits for a person"
        return "now" if at <= timezone.now() else at.strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="last error / hold")
    def short_error(self, obj):
        return (obj.held_reason or obj.last_error)[:160]

    @admin.display(description="runs")
    def runs(self, obj):
        url = reverse("admin:posinv_jobrun_changelist") + f"?name__exact={obj.job}&subject={obj.subject}"
        return format_html('<a href="{}">job runs</a>', url)

    def has_release_permission(self, request):
        return request.user.has_perm("posinv.release_schedulestate")

    @admin.action(description="Release: run at the next tick (ends a hold or a backoff)", permissions=["release"])
    def release(self, request, queryset):
        released = schedule_release(state_ids=list(queryset.values_list("pk", flat=True)),
                                    released_by=request.user.get_username())
        self.message_user(request, f"{released} schedules released; they run at the next scheduler tick.")


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("key", "holder", "expires_at")
    search_fields = ("key", "holder")

    def has_delete_permission(self, request, obj=None):
        # Freeing a lease of a dead worker by hand is allowed.
        return request.user.is_superuser


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("kind", "subject", "user")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "subject" in self.fields:  # an issued token's page shows it read-only
            self.fields["subject"].required = False
            self.fields["subject"].help_text = "the device code (register, cabinet, store); for a user, the username"

    def clean(self):
        data = super().clean()
        if data.get("kind") != ApiToken.Kind.USER and not data.get("subject"):
            self.add_error("subject", "a device token needs the device code")
        if data.get("kind") == ApiToken.Kind.USER:
            user = data.get("user")
            if user is None:
                self.add_error("user", "a staff user token needs its user")
            elif not user.is_staff:
                self.add_error("user", "only staff users may call the API")
            else:
                data["subject"] = user.get_username()
        return data


def _token_issued(kind: str, subject: str, raw: str) -> None:
    # Apps that keep something derived from a token (pos keeps a pull
    # register's token encrypted, ADR 0008) refresh it through their
    # `token_issued` extension (posinv/plugins.py).
    for hook in extensions("token_issued"):
        hook(kind=kind, subject=subject, raw=raw)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are stored hashed: the raw token is shown once, when it is
    issued or rotated, in the message at the top of the page."""

    form = ApiTokenForm
    list_display = ("kind", "subject", "user", "prefix", "created_at", "last_used_at")
    list_filter = ("kind",)
    search_fields = ("subject", "prefix", "user__username")
    list_select_related = ("user",)
    actions = ["rotate"]

    def get_readonly_fields(self, request, obj=None):
        return ("kind", "subject", "user", "prefix", "created_at", "last_used_at") if obj else ()

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        raw = token_issue(kind=obj.kind, subject=obj.subject, user=obj.user)
        _token_issued(obj.kind, obj.subject, raw)
        issued = ApiToken.objects.get(kind=obj.kind, subject=obj.subject)
        obj.pk, obj.key_hash, obj.prefix, obj.created_at = issued.pk, issued.key_hash, issued.prefix, issued.created_at
        self._show_once(request, issued, raw)

    @admin.action(description="Rotate selected tokens (shows the new tokens once)")
    def rotate(self, request, queryset):
        for token in list(queryset):
            raw = token_issue(kind=token.kind, subject=token.subject, user=token.user)
            _token_issued(token.kind, token.subject, raw)
            issued = ApiToken.objects.get(kind=token.kind, subject=token.subject)
            self._show_once(request, issued, raw)

    def _show_once(self, request, token, raw):
        self.message_user(
            request,
            format_html(
                "New token for {} {}: <code>{}</code> (copy it now; it is not shown again)",
                token.get_kind_display(),
                token.subject,
                raw,
            ),
            messages.WARNING,
        )
