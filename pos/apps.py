from django.apps import AppConfig


class PosConfig(AppConfig):
    """Cash registers and the POS domain: processes, receipts, payments,
    customers, and the synchronization entries between register and main."""

    name = "pos"
    verbose_name = "Point of sale"
