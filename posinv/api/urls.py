"""Core API routes, mounted under /api/v1/."""
from django.urls import path

from posinv.api import views

urlpatterns = [
    path("articles/lookup/", views.ArticleLookupView.as_view(), name="article-lookup"),
    path("stock-levels/", views.StockLevelListView.as_view(), name="stock-level-list"),
    path("stock-moves/", views.StockMoveBatchView.as_view(), name="stock-move-batch"),
]
