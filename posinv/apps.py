from django.apps import AppConfig


class PosinvConfig(AppConfig):
    """The core: locations, articles, prices and the stock ledger."""

    name = "posinv"
    verbose_name = "Inventory"
    default_auto_field = "django.db.models.BigAutoField"
    change_consumers = ["posinv.services.suggestions.suggestions_refresh_for_changes"]
    schedule_providers = ["posinv.schedules.core_due", "posinv.schedules.liveness_due"]
    demo_loaders: list[str] = []

    def ready(self):
        # Registers the OpenAPI description of our token header (drf-spectacular extension).
        from posinv.api import schema  # noqa: F401
