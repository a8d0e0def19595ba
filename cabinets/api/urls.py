"""API routes of the cabinets app, mounted under /api/v1/."""

urlpatterns: list = []
