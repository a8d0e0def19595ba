"""API routes of the pos app, mounted under /api/v1/."""

urlpatterns: list = []
