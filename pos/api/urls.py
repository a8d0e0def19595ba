"""API routes of the pos app, mounted under /api/v1/ (docs/registers.md)."""
from django.urls import path

from pos.api import views

urlpatterns = [
    path("registers/<str:code>/", views.RegisterStatusView.as_view(), name="register-status"),
    path("registers/<str:code>/entries/", views.RegisterEntriesView.as_view(), name="register-entries"),
    path("registers/<str:code>/settings/", views.RegisterSettingsView.as_view(), name="register-settings"),
    path("registers/<str:code>/receipts/", views.RegisterReceiptListView.as_view(), name="register-receipts"),
    # Served by a register node only.
    path("sync/outbox/", views.OutboxView.as_view(), name="sync-outbox"),
    path("sync/outbox/ack/", views.OutboxAckView.as_view(), name="sync-outbox-ack"),
    path("sync/push-now/", views.PushNowView.as_view(), name="sync-push-now"),
    path("till/receipts/", views.TillReceiptView.as_view(), name="till-receipts"),
    path("till/processes/", views.TillProcessOpenView.as_view(), name="till-process-open"),
    path("till/processes/<str:process_no>/close/", views.TillProcessCloseView.as_view(), name="till-process-close"),
    path("till/stock-counts/", views.TillStockCountView.as_view(), name="till-stock-counts"),
]
