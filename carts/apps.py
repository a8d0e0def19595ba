from django.apps import AppConfig


class CartsConfig(AppConfig):
    """External stores, carts and wholesalers: connectors, product links, the
    web stack and its controller, imported orders, price sync."""

    name = "carts"
    verbose_name = "Carts and stores"
    default_auto_field = "django.db.models.BigAutoField"
    change_consumers = ["carts.services.stack.stack_changes_consume"]
    schedule_providers = ["carts.schedules.carts_due"]
    demo_loaders: list[str] = []
