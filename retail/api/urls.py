"""API routes of the retail app, mounted under /api/v1/."""

from django.urls import path

from retail.api import views

urlpatterns = [
    path("scan/<str:code>/", views.ScanView.as_view(), name="retail-scan"),
    path("sales/", views.SaleView.as_view(), name="retail-sales"),
    path("rfid/reads/", views.RfidReadView.as_view(), name="retail-rfid-reads"),
    path("stock-matrix/", views.StockMatrixView.as_view(), name="retail-stock-matrix"),
    path("transfers/", views.TransferListView.as_view(), name="retail-transfers"),
    path("transfers/<str:number>/", views.TransferDetailView.as_view(), name="retail-transfer"),
    path("transfers/<str:number>/ship/", views.TransferShipView.as_view(), name="retail-transfer-ship"),
    path("transfers/<str:number>/receive/", views.TransferReceiveView.as_view(), name="retail-transfer-receive"),
    path("transfers/<str:number>/cancel/", views.TransferCancelView.as_view(), name="retail-transfer-cancel"),
]
