"""Admin of the carts app: stores with their link and stack state at a
glance (secrets never shown back), the web stack with retry and discard,
imported orders, product links and the system parameters."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Min, Q
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from carts.connectors.base import ConnectorError, platforms
from carts.models import (
    CartSettings,
    ExternalStore,
    ImportedOrder,
    ImportedOrderLine,
    ProductLink,
    StackEntry,
    StoreDownload,
)
from carts.services.links import links_match
from carts.services.orders import order_lines_retry, orders_import
from carts.services.qoh import qoh_get, qoh_reconcile
from carts.services.stack import stack_discard, stack_retry
from carts.services.stores import store_secrets_set, store_validate
from carts.services.warehouses import (
    store_directions_validate,
    store_download_confirm,
    store_download_discard,
    store_price_run,
    store_stock_run,
)
from posinv.exceptions import DomainError
from posinv.models import JobRun
from posinv.queueing import enqueue
from posinv.services.runs import schedule_held_for

WAITING = StackEntry.State.WAITING


def _secret_fields() -> dict[str, tuple[str, str]]:
    """form field name -> (platform, secret parameter name)."""
    fields = {}
    for name, cls in sorted(platforms().items()):
        for param in cls.params:
            if param.secret:
                fields[f"secret__{name}__{param.name}"] = (name, param.name)
    return fields


class ExternalStoreForm(forms.ModelForm):
    """Secrets are write-only: each is a password box that is never filled
    back; leaving it blank keeps the stored value."""

    platform = forms.ChoiceField(choices=())
    url = forms.URLField(label="URL", max_length=300, assume_scheme="https")

    class Meta:
        model = ExternalStore
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["platform"].choices = [(name, cls.label) for name, cls in sorted(platforms().items())]
        current = self.instance.platform if self.instance.pk else None
        for field_name, (platform, param) in _secret_fields().items():
            if current and platform != current:
                continue
            cls = platforms()[platform]
            label = next(p.label for p in cls.params if p.name == param)
            is_set = bool(self.instance.secrets.get(param)) if self.instance.pk else False
            self.fields[field_name] = forms.CharField(
                label=f"{cls.label}: {label}", required=False,
                widget=forms.PasswordInput(render_value=False),
                help_text="Stored; leave blank to keep it." if is_set else "Not set.",
            )

    def new_secrets(self) -> dict:
        platform = self.cleaned_data.get("platform")
        return {param: self.cleaned_data[f] for f, (p, param) in _secret_fields().items()
                if p == platform and self.cleaned_data.get(f)}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        store = self.instance
        for name in ("platform", "url", "api_version", "params", "sync_inventory", "kind", "stock_direction",
                     "stock_target", "price_direction", "price_group", "direct_source"):
            setattr(store, name, cleaned.get(name))
        secrets = {**(store.secrets if store.pk else {}), **self.new_secrets()}
        sends = cleaned.get("sync_inventory") or cleaned.get("stock_direction") == ExternalStore.Direction.SEND
        if sends and not cleaned.get("locations"):
            self.add_error("locations", "a store that receives our stock needs the locations it sells")
        try:
            store_validate(store=store, secrets=secrets)
            store_directions_validate(store=store)
        except DomainError as exc:
            for problem in exc.problems:
                field = problem.field if problem.field in self.fields else None
                self.add_error(field, f"{problem.field}: {problem.reason}" if field is None else problem.reason)
        return cleaned


class _Action:
    """Run a service per selected store and report the outcome to the user."""

    @staticmethod
    def each(modeladmin, request, queryset, what: str, call):
        for store in queryset:
            try:
                message = call(store)
            except (DomainError, ConnectorError) as exc:
                modeladmin.message_user(request, f"{store.code}: {what} failed: {exc}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{store.code}: {message}", messages.SUCCESS)


@admin.register(ExternalStore)
class ExternalStoreAdmin(admin.ModelAdmin):
    form = ExternalStoreForm
    list_display = ["code", "name", "kind", "platform", "sync_inventory", "import_orders", "stock_direction",
                    "price_direction", "links_count", "waiting_count", "failed_count", "oldest_waiting",
                    "last_order_import_at", "last_stock_run_at", "active"]
    list_filter = ["kind", "platform", "sync_inventory", "import_orders", "stock_direction", "price_direction",
                   "active"]
    search_fields = ["code", "name", "url"]
    filter_horizontal = ["locations"]
    readonly_fields = ["secrets_state", "link_report_summary", "last_order_import_at", "last_stock_run_at",
                       "last_price_run_at", "last_runs", "stock_downloads", "price_downloads"]
    actions = ["send_qoh", "get_qoh", "match_products", "import_orders_now", "reconcile", "stock_run_now",
               "price_run_now"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _links=Count("links", distinct=True),
            _waiting=Count("stack", filter=Q(stack__state=WAITING), distinct=True),
            _failed=Count("stack", filter=Q(stack__state=StackEntry.State.FAILED), distinct=True),
            _oldest=Min("stack__created_at", filter=Q(stack__state=WAITING)),
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The secret boxes are added by the form itself (per platform), so the
        # form is built from its Meta rather than from the fieldsets' names.
        # A user who may only view gets an empty form: every field is shown read-only.
        kwargs["fields"] = None if self.has_change_permission(request, obj) else []
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        cart = ["locations", "order_location", "safety_buffer", "sync_inventory", "direct_source", "import_orders",
                "order_interval_seconds", "order_cursor", "last_order_import_at"]
        known = platforms().get(obj.platform) if obj is not None else None
        if obj is not None and not (known and known.supports_inventory_sync):
            # Not offered where the platform cannot take quantities.
            cart.remove("sync_inventory")
        secrets = [name for name, (platform, _) in _secret_fields().items() if obj is None or platform == obj.platform]
        return [
            (None, {"fields": ["code", "name", "kind", "platform", "url", "api_version", "params", "active"]}),
            ("Secrets (write-only)", {"fields": ["secrets_state", *secrets]}),
            ("Cart: locations, inventory sync, orders", {"fields": cart}),
            ("Stock tab", {"fields": ["stock_direction", "stock_target", "stock_interval_seconds", "zero_hold_share",
                                      "last_stock_run_at", "stock_downloads"]}),
            ("Prices tab", {"fields": ["price_direction", "price_group", "price_interval_seconds",
                                       "price_hold_share", "price_cut_share", "last_price_run_at",
                                       "price_downloads"]}),
            ("Products", {"fields": ["link_report_summary"]}),
            ("Last runs", {"fields": ["last_runs"]}),
        ]

    @admin.display(description="links", ordering="_links")
    def links_count(self, obj):
        return obj._links

    @admin.display(description="waiting", ordering="_waiting")
    def waiting_count(self, obj):
        return obj._waiting

    @admin.display(description="failed", ordering="_failed")
    def failed_count(self, obj):
        return obj._failed

    @admin.display(description="oldest waiting since", ordering="_oldest")
    def oldest_waiting(self, obj):
        return obj._oldest

    @admin.display(description="secrets")
    def secrets_state(self, obj):
        cls = platforms().get(obj.platform)
        if cls is None:
            return "-"
        return ", ".join(f"{p.name}: {'set' if obj.secrets.get(p.name) else 'not set'}"
                         for p in cls.params if p.secret)

    @admin.display(description="last runs")
    def last_runs(self, obj):
        """The newest run of each of the store's jobs, with its outcome (counts or error)."""
        if obj is None or obj.pk is None:
            return "-"
        rows = []
        for name in ("store_stock", "store_prices", "cart_orders_import", "cart_send_qoh"):
            run = JobRun.objects.filter(name=name, subject=obj.code).order_by("-started_at").first()
            if run is not None:
                detail = run.error or ", ".join(f"{k} {v}" for k, v in (run.counts or {}).items())
                rows.append((name, run.started_at.strftime("%Y-%m-%d %H:%M:%S"), run.status, detail[:300]))
        for name in ("store_stock", "store_prices"):
            held = schedule_held_for(job=name, subject=obj.code)
            if held is not None:
                rows.insert(0, (name, held.held_since.strftime("%Y-%m-%d %H:%M:%S"), "HELD, waits for you",
                                f"{held.held_reason[:240]} (Store downloads: apply or discard the held download)"))
        if not rows:
            return "never run"
        return format_html_join("", "<div>{} at {}: <b>{}</b> {}</div>", rows)

    def _downloads(self, obj, kind: str):
        """An unfinished or held download of this kind, in words a person can act on."""
        if obj is None or obj.pk is None:
            return "-"
        download = obj.downloads.filter(kind=kind, state__in=[StoreDownload.State.FETCHING,
                                                              StoreDownload.State.HELD]).first()
        if download is None:
            return "none open"
        if download.state == StoreDownload.State.HELD:
            return format_html_join("", "<div><b>held</b> since {}: {} (Store downloads: apply or discard)</div>",
                                    [(download.updated_at.strftime("%Y-%m-%d %H:%M"), download.hold_reason)])
        resume = download.resume_at.strftime("%H:%M:%S") if download.resume_at else "the next tick"
        return format_html_join("", "<div>reading: {} pages so far; goes on from page {} at {} "
                                    "(the platform's rate limit)</div>",
                                [(download.pages_read, download.next_page, resume)])

    @admin.display(description="open stock download")
    def stock_downloads(self, obj):
        return self._downloads(obj, StoreDownload.Kind.STOCK)

    @admin.display(description="open price download")
    def price_downloads(self, obj):
        return self._downloads(obj, StoreDownload.Kind.PRICES)

    @admin.display(description="last product match")
    def link_report_summary(self, obj):
        report = obj.link_report or {}
        if not report:
            return "never matched"
        rows = [(key, len(report.get(key) or [])) for key in ("matched", "missing_here", "missing_there", "ambiguous")]
        ambiguous = [(f"ambiguous {item.get('ref')}", item.get("reason")) for item in report.get("ambiguous", [])[:20]]
        return format_html_join("", "<div>{}: {}</div>", rows + ambiguous)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        secrets = form.new_secrets()
        if secrets:
            store_secrets_set(store=obj, values=secrets)

    @admin.action(description="Send QOH to web store")
    def send_qoh(self, request, queryset):
        def call(store):
            enqueue("carts.jobs.qoh_send_job", queue="default", unique_key=f"send-qoh:{store.pk}", clear="end",
                    store_id=store.pk)
            waiting = StackEntry.objects.filter(store=store, state__in=[WAITING, StackEntry.State.SENDING]).count()
            return f"Send QOH started; {waiting} products still waiting (see the web stack)"
        _Action.each(self, request, queryset, "Send QOH", call)

    @admin.action(description="Get QOH from web store (as counts)")
    def get_qoh(self, request, queryset):
        def call(store):
            result = qoh_get(store=store)
            for reason in result.refused[:20]:
                # Not reached: say so, never a silent success (the command exits 1 for these).
                self.message_user(request, f"{store.code}: Get QOH refused {reason}", messages.WARNING)
            return (f"Get QOH read {result.read}, counted {result.counted}, unchanged {result.unchanged}"
                    + (f", refused {len(result.refused)}" if result.refused else "")
                    + (f", missing on the store: {', '.join(result.missing[:20])}" if result.missing else ""))
        _Action.each(self, request, queryset, "Get QOH", call)

    @admin.action(description="Match products by SKU / barcode")
    def match_products(self, request, queryset):
        def call(store):
            counts = links_match(store=store)["counts"]
            return ("matched {matched}, missing here {missing_here}, missing on the store {missing_there}, "
                    "ambiguous {ambiguous}".format(**counts))
        _Action.each(self, request, queryset, "matching", call)

    @admin.action(description="Import orders now")
    def import_orders_now(self, request, queryset):
        def call(store):
            result = orders_import(store=store)
            if result.skipped:
                return "an import is already running"
            return f"imported {result.orders} orders; {result.lines_unknown} lines wait for an article"
        _Action.each(self, request, queryset, "order import", call)

    @admin.action(description="Run the stock tab now (download or send)")
    def stock_run_now(self, request, queryset):
        def call(store):
            run = store_stock_run(store=store)
            if run.paused_until is not None:
                return (f"paused by the platform's rate limit after {run.pages_read} pages; goes on from page "
                        f"{run.next_page} at {run.paused_until:%H:%M:%S}")
            if run.sent is not None:
                return f"stock sent to {run.sent.sent} products; {run.sent.waiting} waiting, {run.sent.failed} failed"
            bad = "; ".join(f"row {b.row}: {b.reason}" for b in run.bad_rows[:10])
            return (f"stock read {run.read}, counted {run.counted}, unchanged {run.unchanged}, "
                    f"not linked {run.unlinked}" + (f"; bad rows: {bad}" if bad else ""))
        _Action.each(self, request, queryset, "stock run", call)

    @admin.action(description="Run the prices tab now (download or send)")
    def price_run_now(self, request, queryset):
        def call(store):
            run = store_price_run(store=store)
            if run.paused_until is not None:
                return (f"paused by the platform's rate limit after {run.pages_read} pages; goes on from page "
                        f"{run.next_page} at {run.paused_until:%H:%M:%S}")
            return f"prices read {run.read}, changed {run.changed}, unchanged {run.unchanged}, sent {run.sent}"
        _Action.each(self, request, queryset, "price run", call)

    @admin.action(description="Reconcile report (store vs ledger)")
    def reconcile(self, request, queryset):
        reports = []
        for store in queryset:
            try:
                reports.append((store, qoh_reconcile(store=store), ""))
            except (DomainError, ConnectorError) as exc:
                reports.append((store, [], str(exc)))
        context = {**self.admin_site.each_context(request), "title": "Reconcile report", "reports": reports,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/carts/reconcile.html", context)


@admin.register(StoreDownload)
class StoreDownloadAdmin(admin.ModelAdmin):
    """Downloads from superior stores and wholesalers: the ones held as a
    likely broken feed show why, and a person allowed to (permission
    `carts.confirm_storedownload`) applies or discards them."""

    list_display = ["id", "store", "kind", "state", "hold_reason", "pages_read", "products_read", "next_page",
                    "resume_at", "started_at", "decided_by", "decided_at"]
    list_filter = ["state", "kind", "store"]
    list_select_related = ["store"]
    search_fields = ["store__code", "hold_reason"]
    readonly_fields = [f.name for f in StoreDownload._meta.fields]
    actions = ["apply_held", "discard_held"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_confirm_permission(self, request):
        return request.user.has_perm("carts.confirm_storedownload")

    def _each(self, request, queryset, what: str, call):
        for download in queryset:
            try:
                call(download_id=download.pk, user=request.user.get_username())
            except (DomainError, ConnectorError) as exc:
                self.message_user(request, f"{download}: {what} failed: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{download.store.code}: {download.kind} download {what}.",
                                  messages.SUCCESS)

    @admin.action(description="Apply the held download as read", permissions=["confirm"])
    def apply_held(self, request, queryset):
        self._each(request, queryset, "applied", store_download_confirm)

    @admin.action(description="Discard the held download", permissions=["confirm"])
    def discard_held(self, request, queryset):
        self._each(request, queryset, "discarded", store_download_discard)


@admin.register(StackEntry)
class StackEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "store", "article", "quantity", "sent_quantity", "state", "attempts", "short_response",
                    "next_attempt_at", "created_at", "sent_at", "origin"]
    list_filter = ["store", "state", "origin"]
    search_fields = ["article__sku", "last_response"]
    list_select_related = ["store", "article"]
    readonly_fields = [f.name for f in StackEntry._meta.fields]
    actions = ["retry", "discard"]
    ordering = ["id"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="last response")
    def short_response(self, obj):
        return obj.last_response[:120]

    @admin.action(description="Retry (attempts reset)")
    def retry(self, request, queryset):
        count = stack_retry(entry_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} entries queued again.")

    @admin.action(description="Discard")
    def discard(self, request, queryset):
        count = stack_discard(entry_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} entries discarded.")


class ImportedOrderLineInline(admin.TabularInline):
    model = ImportedOrderLine
    extra = 0
    can_delete = False
    fields = ["line_id", "sku", "barcode", "title", "quantity", "refunded_quantity", "returned_quantity", "article",
              "state", "reason"]
    readonly_fields = fields


@admin.register(ImportedOrder)
class ImportedOrderAdmin(admin.ModelAdmin):
    list_display = ["number", "store", "status", "remote_status", "line_count", "waiting_lines", "placed_at",
                    "imported_at"]
    list_filter = ["store", "status"]
    search_fields = ["number", "external_id", "lines__sku"]
    list_select_related = ["store"]
    inlines = [ImportedOrderLineInline]
    readonly_fields = ["store", "external_id", "number", "status", "remote_status", "placed_at", "remote_updated_at",
                       "raw", "imported_at", "updated_at"]
    actions = ["retry_lines"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _lines=Count("lines"),
            _waiting=Count("lines", filter=Q(lines__state__in=["unknown_sku", "held"])),
        )

    @admin.display(description="lines", ordering="_lines")
    def line_count(self, obj):
        return obj._lines

    @admin.display(description="waiting lines", ordering="_waiting")
    def waiting_lines(self, obj):
        return obj._waiting

    @admin.action(description="Retry lines with unknown SKU")
    def retry_lines(self, request, queryset):
        for store in ExternalStore.objects.filter(pk__in=queryset.values("store_id")):
            left = order_lines_retry(store=store)
            self.message_user(request, f"{store.code}: {left} lines still wait for an article.")


@admin.register(ProductLink)
class ProductLinkAdmin(admin.ModelAdmin):
    list_display = ["article", "store", "remote_ref", "remote_sku", "matched_by", "remote_quantity",
                    "last_sent_quantity", "last_sent_at", "outcome_unknown", "claimed_until"]
    list_filter = ["store", "matched_by", "outcome_unknown"]
    search_fields = ["article__sku", "remote_ref", "remote_sku"]
    list_select_related = ["article", "store"]
    autocomplete_fields = ["article"]
    fields = ["store", "article", "remote_ref", "remote_product_id", "remote_sku", "remote_barcode", "matched_by",
              "remote_quantity", "last_sent_quantity", "last_sent_at", "outcome_unknown", "claimed_until"]
    readonly_fields = ["matched_by", "remote_quantity", "last_sent_quantity", "last_sent_at", "outcome_unknown",
                       "claimed_until"]

    def save_model(self, request, obj, form, change):
        # A link made here by hand is marked so a later match run's report says so.
        if not change:
            obj.matched_by = ProductLink.Match.MANUAL
        super().save_model(request, obj, form, change)


@admin.register(CartSettings)
class CartSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "synch_qoh", "max_attempts", "backoff_base_seconds", "backoff_cap_seconds",
                    "claim_seconds"]

    def has_add_permission(self, request):
        return not CartSettings.objects.exists()
