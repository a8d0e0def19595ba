from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: the sync-health dashboard, /healthz, /metrics, structured
    logs and the recorded ledger verification."""

    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
    change_consumers: list[str] = []
    schedule_providers = ["ops.schedules.ops_due"]
    demo_loaders: list[str] = []
