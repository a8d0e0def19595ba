"""API routes of the carts app, mounted under /api/v1/."""
from django.urls import path

from carts.api.views import OrderWebhookView, StackListView

urlpatterns: list = [
    path("carts/stack/", StackListView.as_view(), name="carts-stack"),
    path("carts/<slug:code>/webhook/", OrderWebhookView.as_view(), name="carts-webhook"),
]
