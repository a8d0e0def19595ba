from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    # The till's scan and sale first: URLs resolve in order, and a till waits for these.
    path("api/v1/", include("retail.api.urls")),
    path("api/v1/", include("posinv.api.urls")),
    path("api/v1/", include("pos.api.urls")),
    path("api/v1/", include("cabinets.api.urls")),
    path("api/v1/", include("carts.api.urls")),
    path("api/v1/", include("backoffice.api.urls")),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("ops.urls")),
]

# Unmatched URLs under /api/ answer the API's JSON error shape, not an HTML page.
handler404 = "posinv.api.errors.page_not_found"
