from django.apps import AppConfig


class PosConfig(AppConfig):
    """Cash registers and the POS domain: processes, receipts, payments,
    customers, and the synchronization entries between register and main."""

    name = "pos"
    verbose_name = "Point of sale"
    default_auto_field = "django.db.models.BigAutoField"
    schedule_providers = ["pos.schedules.pos_due"]
    demo_loaders = ["pos.demo.pos_demo_load"]
    token_issued = ["pos.services.transfer.register_token_issued"]

    def ready(self):
        from pos.api import schema  # noqa: F401 - registers the OpenAPI auth extension
