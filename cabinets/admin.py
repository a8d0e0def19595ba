"""Admin of the cabinets app: cabinets with their trays at a glance, the
readings with their outcome, a tray's weight chart, shrink alerts. Lists
are annotated so they cost a fixed number of queries."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from cabinets.charts import weight_chart_svg
from cabinets.models import ShrinkAlert, Tray, WeighingCabinet, WeightReading
from cabinets.services.alerts import shrink_alerts_acknowledge
from cabinets.services.provisioning import cabinet_token_rotate
from cabinets.services.pull import PullError, cabinet_pull_cursor_reset, cabinet_pull_request
from cabinets.services.readings import FUTURE_SKEW, readings_of_tray
from posinv.models import ApiToken

STATE_COLOURS = {"empty": "#9e9e9e", "filled": "#2e7d32"}
OUTCOME_COLOURS = {
    "posted": "#2e7d32", "unchanged": "#607d8b", "held": "#ef6c00", "stale": "#795548", "rejected": "#c62828",
}


def badge(text: str, colour: str):
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 6px;border-radius:8px;white-space:nowrap">{}</span>',
        colour, text,
    )


def ago(moment) -> str:
    if moment is None:
        return "never"
    seconds = int((timezone.now() - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


def tray_state_badge(tray: Tray):
    if tray.pk is None:
        return "-"
    text = tray.get_state_display() + (" · below threshold" if tray.below_threshold else "")
    return badge(text, "#c62828" if tray.below_threshold else STATE_COLOURS[tray.state])


def _formfield(field, **kwargs):
    # Vendor endpoints are https unless written otherwise (Django 6's default, chosen now).
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class CabinetForm(forms.ModelForm):
    pull_api_key = forms.CharField(
        required=False, label="Vendor API key", widget=forms.PasswordInput(render_value=True),
        help_text="Sent as 'Authorization: Bearer <key>'.",
    )

    class Meta:
        model = WeighingCabinet
        fields = "__all__"
        formfield_callback = _formfield


class TrayInline(admin.TabularInline):
    model = Tray
    extra = 0
    autocomplete_fields = ("article",)
    fields = (
        "tray_id", "article", "position", "tare_g", "threshold", "capacity",
        "weight_g", "quantity", "state_badge", "last_read_at", "history",
    )
    readonly_fields = ("weight_g", "quantity", "state_badge", "last_read_at", "history")
    ordering = ("tray_id",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("article")

    @admin.display(description="state")
    def state_badge(self, tray: Tray):
        return tray_state_badge(tray)

    @admin.display(description="weight chart")
    def history(self, tray: Tray):
        if tray.pk is None:
            return "-"
        return format_html('<a href="{}">chart</a>', reverse("admin:cabinets_tray_change", args=[tray.pk]))


class PullingFilter(admin.SimpleListFilter):
    title = "readings arrive by"
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return (("pull", "pull from the vendor"), ("push", "push from the cabinet"))

    def queryset(self, request, queryset):
        if self.value() == "pull":
            return queryset.exclude(pull_url="")
        if self.value() == "push":
            return queryset.filter(pull_url="")
        return queryset


@admin.register(WeighingCabinet)
class WeighingCabinetAdmin(admin.ModelAdmin):
    form = CabinetForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = (
        "code", "name", "location", "mode", "interval_seconds", "tray_count", "filled_count", "low_count",
        "last_reading", "health", "last_pull_error_short",
    )
    list_filter = ("active", PullingFilter)
    search_fields = ("code", "name", "location__code")
    list_select_related = ("location",)
    autocomplete_fields = ("location",)
    # Explicit because the tray counts group the query, and Django drops
    # Meta.ordering from GROUP BY queries (the tray autocomplete pages this list).
    ordering = ("code",)
    inlines = (TrayInline,)
    actions = ("pull_now", "reset_pull_cursor", "rotate_token")
    readonly_fields = (
        "last_reading_at", "last_pull_at", "pull_cursor_state", "last_pull_error", "pull_blocked_until", "created_at",
        "device_token", "rejected_readings",
    )
    fieldsets = (
        (None, {"fields": ("code", "name", "location", "active", "interval_seconds")}),
        ("Vendor pull", {"fields": ("pull_url", "pull_api_key", "pull_timeout_seconds", "last_pull_at",
                                    "pull_cursor_state", "last_pull_error", "pull_blocked_until",
                                    "rejected_readings")}),
        ("Weight to quantity (docs/cabinets.md)", {"fields": ("tolerance", "hysteresis_units", "piece_variation",
                                                              "max_weight_g")}),
        ("Activity", {"fields": ("device_token", "last_reading_at", "created_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_trays=Count("trays", distinct=True),
            n_filled=Count("trays", filter=Q(trays__state=Tray.State.FILLED), distinct=True),
            n_low=Count("trays", filter=Q(trays__quantity__lt=F("trays__threshold")), distinct=True),
        )

    @admin.display(description="mode")
    def mode(self, cabinet):
        return "pull" if cabinet.pull_url else "push"

    @admin.display(description="trays", ordering="n_trays")
    def tray_count(self, cabinet):
        return cabinet.n_trays

    @admin.display(description="filled", ordering="n_filled")
    def filled_count(self, cabinet):
        return cabinet.n_filled

    @admin.display(description="below threshold", ordering="n_low")
    def low_count(self, cabinet):
        return badge(str(cabinet.n_low), "#c62828") if cabinet.n_low else "0"

    @admin.display(description="last reading", ordering="last_reading_at")
    def last_reading(self, cabinet):
        return ago(cabinet.last_reading_at)

    @admin.display(description="health")
    def health(self, cabinet):
        if not cabinet.active:
            return badge("inactive", "#9e9e9e")
        if cabinet.is_silent():
            return badge(f"⚠ silent for over two intervals ({2 * cabinet.interval_seconds} s)", "#c62828")
        return badge("ok", "#2e7d32")

    @admin.display(description="device token")
    def device_token(self, cabinet):
        token = ApiToken.objects.filter(kind=ApiToken.Kind.CABINET, subject=cabinet.code).first()
        if token is None:
            return "none: issue one with the action 'Issue a new device token'"
        used = f"last used {ago(token.last_used_at)}" if token.last_used_at else "never used"
        return f"{token.prefix}… (issued {token.created_at:%Y-%m-%d %H:%M}, {used})"

    @admin.display(description="pull cursor")
    def pull_cursor_state(self, cabinet):
        """The cursor, and a warning when a broken clock put it ahead of ours."""
        if cabinet.pull_cursor is None:
            return "none: the next pull asks the vendor for everything it has"
        text = cabinet.pull_cursor.isoformat(timespec="seconds")
        if cabinet.pull_cursor > timezone.now() + FUTURE_SKEW:
            return badge(f"{text}: ahead of our clock, no true reading is fetched; use 'Reset the pull cursor'",
                         "#c62828")
        return text

    @admin.display(description="rejected readings")
    def rejected_readings(self, cabinet):
        if cabinet.pk is None:
            return "-"
        url = (reverse("admin:cabinets_weightreading_changelist")
               + f"?cabinet__id__exact={cabinet.pk}&outcome__exact={WeightReading.Outcome.REJECTED}")
        last = (f"last {ago(cabinet.last_rejected_at)}: {cabinet.last_rejected_reason}"
                if cabinet.last_rejected_at else "none yet")
        return format_html('<a href="{}">the rejected readings</a> ({})', url, last)

    @admin.display(description="last pull error")
    def last_pull_error_short(self, cabinet):
        return cabinet.last_pull_error[:80]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        cabinet = self.get_object(request, object_id)
        if cabinet is not None and cabinet.active and cabinet.is_silent():
            self.message_user(
                request,
                f"Cabinet {cabinet.code} has sent nothing for more than two intervals "
                f"(last reading: {ago(cabinet.last_reading_at)}, interval {cabinet.interval_seconds} s).",
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Pull readings from the vendor now")
    def pull_now(self, request, queryset):
        for cabinet in queryset:
            try:
                cabinet_pull_request(cabinet=cabinet)
            except PullError as exc:
                self.message_user(request, f"{cabinet.code}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{cabinet.code}: pull requested")

    @admin.action(description="Reset the pull cursor (to the newest accepted reading)", permissions=["change"])
    def reset_pull_cursor(self, request, queryset):
        for cabinet in queryset.exclude(pull_url=""):
            cursor = cabinet_pull_cursor_reset(cabinet=cabinet)
            self.message_user(
                request, f"{cabinet.code}: the next pull asks from "
                f"{cursor.isoformat(timespec='seconds') if cursor else 'the start of the vendor history'}",
            )

    @admin.action(description="Issue a new device token (shown once)")
    def rotate_token(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one cabinet to issue a token.", messages.ERROR)
            return
        cabinet = queryset.get()
        token = cabinet_token_rotate(cabinet=cabinet)
        self.message_user(
            request, f"New token of {cabinet.code} (shown once; the old one no longer works): {token}",
            messages.WARNING,
        )


@admin.register(Tray)
class TrayAdmin(admin.ModelAdmin):
    list_display = (
        "tray_id", "cabinet", "article", "position", "weight_g", "quantity", "threshold", "state_badge",
        "last_read_at",
    )
    list_filter = ("state", "cabinet")
    search_fields = ("tray_id", "article__sku", "article__name", "cabinet__code", "position")
    list_select_related = ("cabinet", "article")
    autocomplete_fields = ("article", "cabinet")
    readonly_fields = (
        "weight_g", "quantity", "state", "last_read_at", "quantity_since", "counted_at", "held_quantity",
        "suggesting", "weight_history",
    )
    fields = (
        "cabinet", "tray_id", "article", "position", "tare_g", "threshold", "capacity",
        "weight_history", "weight_g", "quantity", "state", "last_read_at", "quantity_since", "counted_at",
        "held_quantity", "suggesting",
    )

    @admin.display(description="state", ordering="state")
    def state_badge(self, tray):
        return tray_state_badge(tray)

    @admin.display(description="weight history (last 200 readings)")
    def weight_history(self, tray):
        if tray.pk is None:
            return "-"
        threshold_g = None
        if tray.threshold is not None and tray.article_id and tray.article.unit_weight_g:
            threshold_g = tray.tare_g + tray.threshold * tray.article.unit_weight_g
        return weight_chart_svg(readings=readings_of_tray(tray=tray), threshold_g=threshold_g)


@admin.register(WeightReading)
class WeightReadingAdmin(admin.ModelAdmin):
    list_display = (
        "read_at", "cabinet", "tray_code", "weight_g", "quantity", "outcome_badge", "position_shown", "via",
        "reason", "move_link",
    )
    list_filter = ("outcome", "via", "position_ignored", "cabinet")
    search_fields = ("=tray_code", "cabinet__code", "reason")
    list_select_related = ("cabinet",)
    date_hierarchy = "read_at"
    show_full_result_count = False  # readings grow fast; skip the second COUNT(*)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, reading):
        return badge(reading.get_outcome_display(), OUTCOME_COLOURS.get(reading.outcome, "#000"))

    @admin.display(description="position")
    def position_shown(self, reading):
        if reading.position_ignored:
            return format_html('<s title="ignored: the tray was filled">{}</s> (ignored)', reading.position)
        return reading.position

    @admin.display(description="move")
    def move_link(self, reading):
        if reading.move_id is None:
            return "-"
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:posinv_stockmove_change", args=[reading.move_id]), reading.move_id
        )


@admin.register(ShrinkAlert)
class ShrinkAlertAdmin(admin.ModelAdmin):
    list_display = (
        "created_at", "tray", "article", "previous_quantity", "new_quantity", "sold", "unexplained", "acknowledged",
    )
    list_filter = ("acknowledged", "tray__cabinet")
    search_fields = ("tray__tray_id", "tray__article__sku")
    list_select_related = ("tray__cabinet", "tray__article")
    actions = ("acknowledge",)
    readonly_fields = (
        "tray", "reading", "previous_quantity", "new_quantity", "sold", "unexplained", "created_at",
    )

    def has_add_permission(self, request):
        return False

    @admin.display(description="article")
    def article(self, alert):
        return alert.tray.article

    @admin.action(description="Mark as looked into")
    def acknowledge(self, request, queryset):
        changed = shrink_alerts_acknowledge(alert_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{changed} alert(s) acknowledged")
