from django.apps import AppConfig


class RetailConfig(AppConfig):
    """The live point of sale and multi-store operations: scanning (GTIN,
    pack and scale barcodes), real-time sales with idempotency keys, RFID
    gate reads, the stock matrix and transfer orders between locations."""

    name = "retail"
    verbose_name = "Retail (live POS, multi-store)"
    default_auto_field = "django.db.models.BigAutoField"
    demo_loaders = ["retail.demo.retail_demo_load"]
    schedule_providers = ["retail.schedules.retail_due"]
