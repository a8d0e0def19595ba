from django.apps import AppConfig


class CartsConfig(AppConfig):
    """External stores, carts and wholesalers: connectors, product links, the
    web stack and its controller, imported orders, price sync."""

    name = "carts"
    verbose_name = "Carts and stores"
