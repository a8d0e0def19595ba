"""API routes of the cabinets app, mounted under /api/v1/."""
from django.urls import path

from cabinets.api.views import CabinetReadingsView

urlpatterns: list = [
    path("cabinets/<str:code>/readings/", CabinetReadingsView.as_view(), name="cabinet-readings"),
]
