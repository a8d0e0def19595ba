"""Carts API: the order webhook for platforms that push orders, and a
read-only view of the web stack for monitoring."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from carts.models import ExternalStore, StackEntry
from carts.services.orders import orders_receive_webhook
from posinv.exceptions import NotFound, Problem


class OrderOutput(serializers.Serializer):
    external_id = serializers.CharField()
    number = serializers.CharField()
    status = serializers.CharField()
    lines = serializers.SerializerMethodField()

    def get_lines(self, order) -> list[dict]:
        return [{"line_id": line.line_id, "sku": line.sku, "quantity": str(line.quantity), "state": line.state,
                 "reason": line.reason} for line in order.lines.all()]


class OrderWebhookView(APIView):
    """`POST /api/v1/carts/<code>/webhook/`: an order pushed by the store,
    authenticated by the platform's signature over the raw body (no token)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema_error_answers = {403: "The signature does not verify with the store's webhook secret; nothing is applied."}

    @extend_schema(
        request={"application/json": dict},
        responses={200: OrderOutput(many=True)},
        parameters=[OpenApiParameter("X-Posinv-Signature", str, OpenApiParameter.HEADER, required=False,
                                     description="generic webhook; Shopify and WooCommerce send their own header")],
        description="The body is the platform's own order JSON (Shopify orders/*, WooCommerce order, or the "
                    "generic `{orders: [...]}`), signed with the store's webhook secret. 403 when the signature "
                    "fails, 400 with the field for a malformed order; nothing is applied then.",
    )
    def post(self, request, code: str):
        store = ExternalStore.objects.filter(code=code, active=True, import_orders=True).first()
        if store is None:
            raise NotFound([Problem(field="code", reason=f"no store {code!r} importing orders")])
        orders = orders_receive_webhook(store=store, body=request.body, headers=request.headers)
        return Response({"orders": OrderOutput(orders, many=True).data})


class StackEntryOutput(serializers.ModelSerializer):
    store = serializers.CharField(source="store.code")
    sku = serializers.CharField(source="article.sku")

    class Meta:
        model = StackEntry
        fields = ["id", "store", "sku", "quantity", "sent_quantity", "state", "attempts", "last_response",
                  "next_attempt_at", "created_at", "sent_at"]


class StackListView(ListAPIView):
    """`GET /api/v1/carts/stack/?store=&state=`: the web stack, oldest first (staff)."""

    serializer_class = StackEntryOutput

    def get_queryset(self):
        rows = StackEntry.objects.select_related("store", "article").order_by("id")
        if self.request.query_params.get("store"):
            rows = rows.filter(store__code=self.request.query_params["store"])
        if self.request.query_params.get("state"):
            rows = rows.filter(state=self.request.query_params["state"])
        return rows
