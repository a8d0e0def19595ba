"""API routes of the carts app, mounted under /api/v1/."""

urlpatterns: list = []
