"""Back-office API: customer history and recommendations, and booking a
delivery against a purchase order. Thin: validate, call, render."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.api import serializers as s
from backoffice.models import PurchaseOrder
from backoffice.selectors.customers import (
    customer_articles,
    customer_get,
    customer_match,
    customer_receipts,
    customer_recommendations,
    customer_totals,
)
from backoffice.services.purchasing import (
    ReceiveSpec,
    purchase_order_receive,
    purchase_order_send,
    purchase_orders_draft,
)
from posinv.api.permissions import IsStaffUser
from posinv.exceptions import NotFound, Problem


class CanReceive(IsStaffUser):
    message = "Receiving goods needs the permission backoffice.receive_purchaseorder."

    def has_permission(self, request, view):
        return super().has_permission(request, view) and request.user.has_perm("backoffice.receive_purchaseorder")


class CustomerRecommendationsView(APIView):
    @extend_schema(parameters=[s.RecommendationQuery], responses=s.RecommendationsOut)
    def get(self, request, customer_no):
        query = s.RecommendationQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = customer_get(customer_no=customer_no)
        rows = customer_recommendations(customer=customer, **query.validated_data)
        return Response({"customer_no": customer.customer_no, "results": s.Recommendation(rows, many=True).data})


class CustomerHistoryView(APIView):
    @extend_schema(responses=s.CustomerHistoryOut)
    def get(self, request, customer_no):
        customer = customer_get(customer_no=customer_no)
        return Response(
            {
                "customer": s.Customer(customer).data,
                "totals": s.CustomerTotals(customer_totals(customer=customer)).data,
                "articles": s.CustomerArticle(customer_articles(customer=customer), many=True).data,
                "receipts": s.CustomerReceipt(customer_receipts(customer=customer), many=True).data,
            }
        )


class CustomerMatchView(APIView):
    schema_error_answers = {404: "No customer matches."}

    @extend_schema(parameters=[s.CustomerMatchQuery], responses=s.Customer)
    def get(self, request):
        query = s.CustomerMatchQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = customer_match(**query.validated_data)
        if customer is None:
            raise NotFound([Problem(reason="no customer matches", code="not_found")])
        return Response(s.Customer(customer).data)


class CanPurchase(IsStaffUser):
    message = "Drafting and sending orders needs the permission backoffice.send_purchaseorder."

    def has_permission(self, request, view):
        return super().has_permission(request, view) and request.user.has_perm("backoffice.send_purchaseorder")


def _order_out(order: PurchaseOrder) -> dict:
    return s.PurchaseOrderOut(order).data


def _order_id(number: str) -> int:
    order = PurchaseOrder.objects.filter(number=number).values_list("pk", flat=True).first()
    if order is None:
        raise NotFound([Problem(field="number", reason=f"no purchase order {number!r}", code="not_found")])
    return order


class PurchaseOrderDraftView(APIView):
    """Group the open order suggestions into draft purchase orders."""

    permission_classes = [CanPurchase]

    @extend_schema(request=None, responses=s.DraftOut)
    def post(self, request):
        result = purchase_orders_draft()
        orders = PurchaseOrder.objects.filter(pk__in=[o.pk for o in result.orders]).select_related(
            "supplier", "location"
        )
        return Response(
            {
                "orders": [_order_out(order) for order in orders.order_by("number")],
                "skipped": [{"suggestion": pk, "reason": reason} for pk, reason in result.skipped],
            }
        )


class PurchaseOrderSendView(APIView):
    permission_classes = [CanPurchase]

    @extend_schema(request=None, responses=s.PurchaseOrderOut)
    def post(self, request, number):
        order = purchase_order_send(order_id=_order_id(number))
        return Response(_order_out(order))


class PurchaseOrderReceiveView(APIView):
    permission_classes = [CanReceive]

    @extend_schema(request=s.ReceiveInput, responses=s.ReceiveOut)
    def post(self, request, number):
        payload = s.ReceiveInput(data=request.data)
        payload.is_valid(raise_exception=True)
        order = _order_id(number)
        data = payload.validated_data
        result = purchase_order_receive(
            order_id=order,
            delivery_note=data["delivery_note"],
            lines=[ReceiveSpec(line_no=line["line_no"], quantity=line["quantity"]) for line in data["lines"]],
            user=request.user if getattr(request.user, "pk", None) else None,
        )
        return Response(
            {
                "number": result.order.number,
                "state": result.order.state,
                "delivery_note": result.receipt.delivery_note,
                "duplicate": result.duplicate,
                "move_ids": {str(k): v for k, v in result.move_ids.items()},
            }
        )
