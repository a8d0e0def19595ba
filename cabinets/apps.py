from django.apps import AppConfig


class CabinetsConfig(AppConfig):
    """Weighing cabinets: trays, weight readings, tray-based order suggestions."""

    name = "cabinets"
    verbose_name = "Weighing cabinets"
