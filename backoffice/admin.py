"""Back-office admin: report pages (charts + CSV), suppliers, purchase
orders with sending and receiving, reorder levels, the purchasing list of
order suggestions, and customer history. Actions and views call services;
list pages are annotated so they make no query per row."""

from __future__ import annotations

import csv
from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from backoffice import reports
from backoffice.models import (
    CustomerHistory,
    GoodsReceipt,
    GoodsReceiptLine,
    OrderSuggestion,
    PurchaseOrder,
    PurchaseOrderLine,
    ReorderLevel,
    ReorderPlan,
    Report,
    RollupState,
    Supplier,
    SupplierArticle,
)
from backoffice.selectors.customers import customer_articles, customer_receipts, customer_recommendations
from backoffice.services.purchasing import (
    ReceiveSpec,
    purchase_order_cancel,
    purchase_order_create,
    purchase_order_receive,
    purchase_order_send,
    purchase_orders_draft,
)
from backoffice.services.reorder import reorder_level_set, reorder_levels_compute
from posinv.admin import ReadOnlyAdminMixin
from posinv.exceptions import DomainError

QTY_FIELD = DecimalField(max_digits=14, decimal_places=3)


@admin.register(Report)
class ReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """No table behind it: the changelist is the index of report pages."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("backoffice.view_reports")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_urls(self):
        return [
            path("", self.admin_site.admin_view(self.index_view), name="backoffice_report_changelist"),
            path("<slug:slug>/", self.admin_site.admin_view(self.page_view), name="backoffice_report_page"),
        ]

    def _check(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied

    def index_view(self, request):
        self._check(request)
        context = {
            **self.admin_site.each_context(request),
            "title": "Sales reports",
            "pages": reports.PAGES.values(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "backoffice/report_index.html", context)

    def page_view(self, request, slug):
        self._check(request)
        spec = reports.PAGES.get(slug)
        if spec is None:
            return HttpResponse(f"no report {slug!r}", status=404, content_type="text/plain")
        filters = reports.ReportFilters(request.GET)
        export = request.GET.get("format") == "csv"
        if not filters.is_valid():
            if export:
                text = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in filters.errors.items())
                return HttpResponse(text, status=400, content_type="text/plain")
            context = {
                **self.admin_site.each_context(request),
                "title": spec.title,
                "spec": spec,
                "filters": filters,
                "pages": reports.PAGES.values(),
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "backoffice/report_page.html", context, status=400)
        page = spec.build(filters)
        if export:
            return self._csv(spec, page, request.GET.get("table"))
        context = {
            **self.admin_site.each_context(request),
            "title": spec.title,
            "spec": spec,
            "filters": filters,
            "page": page,
            "charts": [(chart.name, chart.as_data()) for chart in page.charts],
            "tables": [
                (table, [[row.get(key) for key, _ in table.columns] for row in table.rows]) for table in page.tables
            ],
            "query": request.GET.urlencode(),
            "freshness": reports.q.rollup_freshness(),
            "pages": reports.PAGES.values(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "backoffice/report_page.html", context)

    def _csv(self, spec, page, table_name):
        tables = {table.name: table for table in page.tables}
        table = tables.get(table_name) if table_name else page.tables[0]
        if table is None:
            return HttpResponse(f"table: expected one of {', '.join(tables)}", status=400, content_type="text/plain")
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{spec.slug}-{table.name}.csv"'
        writer = csv.writer(response)
        writer.writerow([label for _, label in table.columns])
        for row in table.rows:
            writer.writerow(["" if row.get(key) is None else row.get(key) for key, _ in table.columns])
        return response


class SupplierArticleInline(admin.TabularInline):
    model = SupplierArticle
    extra = 0
    autocomplete_fields = ["article"]
    fields = ["article", "supplier_sku", "pack_size", "min_order_qty", "lead_time_days", "cost", "preferred"]


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "email", "lead_time_days", "article_count", "open_orders", "active"]
    list_filter = ["active"]
    search_fields = ["code", "name", "email"]
    # Explicit because the counts group the query, and Django drops Meta.ordering
    # from GROUP BY queries (the supplier autocomplete pages this list).
    ordering = ["code"]
    inlines = [SupplierArticleInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_articles=Count("articles", distinct=True),
                n_open=Count(
                    "purchase_orders",
                    filter=~Q(purchase_orders__state__in=["received", "cancelled"]),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="articles", ordering="n_articles")
    def article_count(self, obj):
        return obj.n_articles

    @admin.display(description="open orders", ordering="n_open")
    def open_orders(self, obj):
        return obj.n_open


@admin.register(SupplierArticle)
class SupplierArticleAdmin(admin.ModelAdmin):
    list_display = [
        "supplier_sku",
        "article",
        "supplier",
        "pack_size",
        "min_order_qty",
        "lead_time_days",
        "cost",
        "preferred",
    ]
    list_filter = ["supplier", "preferred"]
    search_fields = ["supplier_sku", "article__sku", "article__name", "supplier__code"]
    list_select_related = ["supplier", "article"]
    autocomplete_fields = ["article", "supplier"]


class PurchaseOrderLineInline(admin.TabularInline):
    model = PurchaseOrderLine
    extra = 0
    autocomplete_fields = ["article"]
    fields = ["line_no", "article", "supplier_article", "quantity_ordered", "quantity_received", "unit_cost"]
    readonly_fields = ["quantity_received", "supplier_article"]

    def has_change_permission(self, request, obj=None):
        # Lines change only while the order is a draft.
        return super().has_change_permission(request, obj) and (obj is None or obj.state == PurchaseOrder.State.DRAFT)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(PurchaseOrder)
class PurchaseOrderAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "supplier",
        "location",
        "state",
        "line_count",
        "ordered",
        "received",
        "created_at",
        "sent_at",
        "receive_link",
    ]
    list_filter = ["state", "supplier", "location"]
    search_fields = ["number", "supplier__code", "supplier__name"]
    list_select_related = ["supplier", "location"]
    readonly_fields = ["number", "state", "created_at", "sent_at", "received_at", "receive_link"]
    fields = ["number", "supplier", "location", "state", "receive_link", "note", "created_at", "sent_at", "received_at"]
    inlines = [PurchaseOrderLineInline]
    actions = ["send_orders", "cancel_orders"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_lines=Count("lines"),
                qty_ordered=Coalesce(Sum("lines__quantity_ordered"), Decimal(0), output_field=QTY_FIELD),
                qty_received=Coalesce(Sum("lines__quantity_received"), Decimal(0), output_field=QTY_FIELD),
            )
        )

    def save_model(self, request, obj, form, change):
        if not change:
            created = purchase_order_create(supplier_id=obj.supplier_id, location_id=obj.location_id, note=obj.note)
            obj.pk, obj.number, obj.created_at = created.pk, created.number, created.created_at
            obj._state.adding = False
            return
        super().save_model(request, obj, form, change)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.state != PurchaseOrder.State.DRAFT:
            return [*self.readonly_fields, "supplier", "location"]
        return self.readonly_fields

    @admin.display(description="lines", ordering="n_lines")
    def line_count(self, obj):
        return obj.n_lines

    @admin.display(description="ordered", ordering="qty_ordered")
    def ordered(self, obj):
        return obj.qty_ordered

    @admin.display(description="received", ordering="qty_received")
    def received(self, obj):
        return obj.qty_received

    @admin.display(description="goods")
    def receive_link(self, obj):
        if obj.pk and obj.state in (PurchaseOrder.State.SENT, PurchaseOrder.State.PARTLY_RECEIVED):
            return format_html(
                '<a href="{}">Receive</a>', reverse("admin:backoffice_purchaseorder_receive", args=[obj.pk])
            )
        return ""

    def has_send_permission(self, request):
        return request.user.has_perm("backoffice.send_purchaseorder")

    @admin.action(description="Send selected draft orders", permissions=["send"])
    def send_orders(self, request, queryset):
        self._each(request, queryset, purchase_order_send, "sent")

    @admin.action(description="Cancel selected orders", permissions=["change"])
    def cancel_orders(self, request, queryset):
        self._each(request, queryset, purchase_order_cancel, "cancelled")

    def _each(self, request, queryset, service, verb):
        done = 0
        for order_id in queryset.values_list("pk", flat=True):
            try:
                service(order_id=order_id)
                done += 1
            except DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        if done:
            self.message_user(request, f"{done} order(s) {verb}.", messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<int:order_id>/receive/",
                self.admin_site.admin_view(self.receive_view),
                name="backoffice_purchaseorder_receive",
            ),
            *super().get_urls(),
        ]

    def receive_view(self, request, order_id):
        if not request.user.has_perm("backoffice.receive_purchaseorder"):
            raise PermissionDenied
        order = get_object_or_404(PurchaseOrder, pk=order_id)
        lines = list(order.lines.select_related("article").order_by("line_no"))
        errors: list[str] = []
        status = 200
        if request.method == "POST":
            specs = []
            for line in lines:
                raw = (request.POST.get(f"line_{line.line_no}") or "").strip()
                if raw and raw != "0":
                    specs.append(ReceiveSpec(line_no=line.line_no, quantity=raw))
            try:
                result = purchase_order_receive(
                    order_id=order.pk,
                    delivery_note=request.POST.get("delivery_note", "").strip(),
                    lines=specs,
                    user=request.user,
                )
            except DomainError as exc:
                errors = [
                    str(problem.reason if not problem.field else f"{problem.field}: {problem.reason}")
                    for problem in exc.problems
                ]
                status = 409 if exc.status == 409 else 400
            else:
                note = " (already booked; nothing moved)" if result.duplicate else ""
                self.message_user(
                    request,
                    f"{order.number}: delivery {result.receipt.delivery_note} booked{note}; "
                    f"order is {result.order.get_state_display().lower()}.",
                    messages.SUCCESS,
                )
                return redirect("admin:backoffice_purchaseorder_change", order.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Receive {order.number}",
            "order": order,
            "lines": [(line, line.quantity_ordered - line.quantity_received) for line in lines],
            "errors": errors,
            "opts": self.model._meta,
            "posted": request.POST if request.method == "POST" else {},
        }
        return TemplateResponse(request, "backoffice/receive.html", context, status=status)


class GoodsReceiptLineInline(admin.TabularInline):
    model = GoodsReceiptLine
    extra = 0
    fields = ["order_line", "quantity", "stock_move"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(GoodsReceipt)
class GoodsReceiptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Deliveries are booked through the receive page only, never edited."""

    list_display = ["delivery_note", "order", "received_at", "received_by"]
    list_select_related = ["order", "received_by"]
    search_fields = ["delivery_note", "order__number"]
    list_filter = ["order__supplier"]
    inlines = [GoodsReceiptLineInline]
    readonly_fields = ["order", "delivery_note", "received_at", "received_by"]


@admin.register(ReorderLevel)
class ReorderLevelAdmin(admin.ModelAdmin):
    """Reorder points by hand (list-editable) or computed; edits go through
    reorder_level_set, which also opens or closes the pair's suggestion."""

    list_display = ["article", "location", "on_hand", "reorder_point", "order_up_to", "how_set"]
    list_editable = ["reorder_point", "order_up_to"]
    list_filter = ["location"]
    search_fields = ["article__sku", "article__name"]
    list_select_related = ["article", "location"]
    fields = ["article", "location", "on_hand", "reorder_point", "order_up_to"]
    readonly_fields = ["article", "location", "on_hand"]
    actions = ["compute_levels"]

    def get_queryset(self, request):
        plan = ReorderPlan.objects.filter(article_id=OuterRef("article_id"), location_id=OuterRef("location_id"))
        return super().get_queryset(request).annotate(plan_source=Subquery(plan.values("source")[:1]))

    @admin.display(description="set", ordering="plan_source")
    def how_set(self, obj):
        return dict(ReorderPlan.Source.choices).get(obj.plan_source, "—")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            reorder_level_set(
                article_id=obj.article_id,
                location_id=obj.location_id,
                reorder_point=obj.reorder_point,
                order_up_to=obj.order_up_to,
                set_by=request.user.get_username(),
            )
        except DomainError as exc:
            self.message_user(request, f"{obj.article}: {exc}", messages.ERROR)

    @admin.action(description="Compute reorder levels from sales (28 days, safety 0.5)", permissions=["change"])
    def compute_levels(self, request, queryset):
        locations = sorted(set(queryset.values_list("location_id", flat=True)))
        result = reorder_levels_compute(location_ids=locations)
        self.message_user(
            request, f"{result.updated} levels computed, {result.kept_manual} set by hand kept.", messages.SUCCESS
        )


@admin.register(OrderSuggestion)
class OrderSuggestionAdmin(admin.ModelAdmin):
    """The purchasing list: one row per open (article, location), from
    reorder points and cabinet trays, with what is already on order."""

    list_display = [
        "article",
        "location",
        "source",
        "state",
        "quantity_on_hand",
        "trigger_level",
        "suggested_quantity",
        "on_order",
        "opened_at",
        "updated_at",
    ]
    list_filter = ["state", "source", "location"]
    search_fields = ["article__sku", "article__name", "source_ref"]
    list_select_related = ["article", "location"]
    actions = ["draft_orders"]
    readonly_fields = [f.name for f in OrderSuggestion._meta.fields]

    def get_queryset(self, request):
        outstanding = ExpressionWrapper(F("quantity_ordered") - F("quantity_received"), output_field=QTY_FIELD)
        open_lines = (
            PurchaseOrderLine.objects.filter(
                article_id=OuterRef("article_id"),
                order__location_id=OuterRef("location_id"),
                order__state__in=["draft", "sent", "partly_received"],
            )
            .values("article_id")
            .annotate(total=Sum(outstanding))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                on_order_qty=Coalesce(Subquery(open_lines, output_field=QTY_FIELD), Decimal(0), output_field=QTY_FIELD)
            )
        )

    @admin.display(description="on order", ordering="on_order_qty")
    def on_order(self, obj):
        return obj.on_order_qty

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Create draft purchase orders (grouped by supplier)", permissions=["change"])
    def draft_orders(self, request, queryset):
        result = purchase_orders_draft(suggestion_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            f"{len(result.orders)} draft order(s), {result.lines_written} line(s): "
            + ", ".join(order.number for order in result.orders),
            messages.SUCCESS,
        )
        for suggestion_id, reason in result.skipped:
            self.message_user(request, f"suggestion {suggestion_id}: {reason}", messages.WARNING)


@admin.register(ReorderPlan)
class ReorderPlanAdmin(admin.ModelAdmin):
    list_display = [
        "article",
        "location",
        "source",
        "avg_daily_sales",
        "lead_time_days",
        "safety_factor",
        "set_by",
        "updated_at",
    ]
    list_filter = ["source", "location"]
    search_fields = ["article__sku"]
    list_select_related = ["article", "location"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CustomerHistory)
class CustomerHistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Customers with their totals; the page shows history and recommendations."""

    list_display = ["customer_no", "name", "email", "card_no", "receipt_count", "revenue", "last_purchase"]
    search_fields = ["customer_no", "name", "email", "card_no"]
    readonly_fields = ["customer_no", "name", "email", "card_no", "history"]
    fields = readonly_fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_receipts=Count("receipts"), spent=Sum("receipts__total"), last=Max("receipts__created_at"))
        )

    @admin.display(description="receipts", ordering="n_receipts")
    def receipt_count(self, obj):
        return obj.n_receipts

    @admin.display(description="revenue", ordering="spent")
    def revenue(self, obj):
        return obj.spent or Decimal("0.00")

    @admin.display(description="last purchase", ordering="last")
    def last_purchase(self, obj):
        return obj.last

    @admin.display(description="history")
    def history(self, obj):
        from django.template.loader import render_to_string

        return render_to_string(
            "backoffice/customer_history.html",
            {
                "receipts": customer_receipts(customer=obj),
                "articles": customer_articles(customer=obj),
                "recommendations": customer_recommendations(customer=obj),
            },
        )


@admin.register(RollupState)
class RollupStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """How far the sales rollup is (read only: `manage.py reports_rollup`
    and the scheduled job move it)."""

    list_display = ["name", "complete_through", "rolled_at", "days_rolled"]
