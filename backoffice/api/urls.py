"""Back-office API routes, mounted under /api/v1/."""

from django.urls import path

from backoffice.api import views

urlpatterns = [
    path("customers/match/", views.CustomerMatchView.as_view(), name="customer-match"),
    path("customers/<str:customer_no>/", views.CustomerHistoryView.as_view(), name="customer-history"),
    path(
        "customers/<str:customer_no>/recommendations/",
        views.CustomerRecommendationsView.as_view(),
        name="customer-recommendations",
    ),
    path("purchase-orders/drafts/", views.PurchaseOrderDraftView.as_view(), name="purchase-order-drafts"),
    path("purchase-orders/<str:number>/send/", views.PurchaseOrderSendView.as_view(), name="purchase-order-send"),
    path(
        "purchase-orders/<str:number>/receipts/",
        views.PurchaseOrderReceiveView.as_view(),
        name="purchase-order-receive",
    ),
]
