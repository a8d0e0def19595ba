from django.apps import AppConfig


class CabinetsConfig(AppConfig):
    """Weighing cabinets: trays, weight readings, tray-based order suggestions."""

    name = "cabinets"
    verbose_name = "Weighing cabinets"
    default_auto_field = "django.db.models.BigAutoField"
    schedule_providers = ["cabinets.schedules.cabinets_due"]
    demo_loaders = ["cabinets.demo.cabinets_demo_load"]
