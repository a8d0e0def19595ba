"""API routes of the retail app, mounted under /api/v1/."""

urlpatterns: list = []
