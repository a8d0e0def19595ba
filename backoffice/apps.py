from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The back office: sales reports, suppliers and purchasing, reorder
    levels, customer history and recommendations, backup and roles."""

    name = "backoffice"
    verbose_name = "Back office"
    default_auto_field = "django.db.models.BigAutoField"
    demo_loaders = ["backoffice.demo.backoffice_demo_load"]
    schedule_providers = ["backoffice.schedules.backoffice_due"]
