from django.urls import path

from ops import views

app_name = "ops"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("ops/health/", views.dashboard, name="dashboard"),
    path("ops/health/verify-ledger/", views.verify_ledger, name="verify-ledger"),
]
