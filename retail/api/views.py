"""Retail API views: validate with an input serializer, call one service,
answer with its result. Scan and sale are for register tokens; RFID reads
for a register (its own location) or staff; transfer orders for staff."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from pos.api.auth import RegisterTokenAuthentication
from pos.models import CashRegister
from pos.selectors import register_active, register_of_token
from pos.services.receipts import CustomerSpec
from posinv.api.auth import DevicePrincipal
from posinv.api.parsers import StorableJSONParser
from posinv.api.permissions import IsStaffUser, StaffWithPermissions, device_of_kind
from posinv.exceptions import InvalidInput, NotFound, Problem
from posinv.models import Location
from posinv.services.ledger import StockOrigin
from retail.api import serializers as s
from retail.models import TransferLine, TransferOrder
from retail.selectors import stock_matrix
from retail.services.rfid import rfid_read_post
from retail.services.sales import SaleLine, SalePayment, live_sale_post
from retail.services.scan import register_scan
from retail.services.transfers import (
    TransferLineSpec,
    transfer_cancel,
    transfer_create,
    transfer_receive,
    transfer_ship,
)

# The till's calls: the token and its register in one query, JSON in and
# out (a sale's nested lines have no form encoding; no browsable page to negotiate).
TILL_AUTHENTICATION = [RegisterTokenAuthentication, SessionAuthentication]
TILL_PARSERS = [StorableJSONParser]
TILL_RENDERERS = [JSONRenderer]

ERRORS = {
    400: OpenApiResponse(s.ErrorsOut, description="Bad input: each error names the field and the reason."),
    401: OpenApiResponse(s.ErrorsOut, description="No or unknown token."),
    403: OpenApiResponse(s.ErrorsOut, description="Not a register token (or the register is inactive)."),
}


class IsRegister(BasePermission):
    """A register's device token; the register is the one named by the token."""

    message = "A register token is required."

    def has_permission(self, request, view):
        return device_of_kind(request, "register") is not None


class IsRegisterOrStaff(BasePermission):
    message = "A register token or a staff user is required."

    def has_permission(self, request, view):
        return device_of_kind(request, "register") is not None or IsStaffUser().has_permission(request, view)


def _register(request) -> CashRegister:
    if getattr(request.auth, "joined", None):
        register = register_of_token(request.auth)  # loaded with the token (RegisterTokenAuthentication)
    else:
        register = register_active(code=request.user.code)
    if register is None:
        # A deactivated (or deleted) till keeps its token until rotated; refuse it.
        raise PermissionDenied(f"register {request.user.code!r} is not active")
    return register


SCAN_EXAMPLE = {
    "code": "4006381333931",
    "kind": "EAN-13",
    "gtin": "04006381333931",
    "article": {"sku": "PEN-01", "name": "Ballpoint pen", "unit": "pcs", "category": "Office"},
    "quantity": "1.000",
    "weight_g": None,
    "unit_price": "1.99",
    "amount": "1.99",
    "currency": "EUR",
    "location": "S1",
    "on_hand": "42.000",
    "available": "40.000",
}
SCALE_EXAMPLE = {
    "code": "2101234012505",
    "kind": "scale-weight",
    "gtin": "02101234012505",
    "article": {"sku": "CHEESE-GOUDA", "name": "Gouda", "unit": "kg", "category": "Deli"},
    "quantity": "1.250",
    "weight_g": 1250,
    "unit_price": "12.80",
    "amount": "16.00",
    "currency": "EUR",
    "location": "S1",
    "on_hand": "8.415",
    "available": "8.415",
}


class ScanView(APIView):
    authentication_classes = TILL_AUTHENTICATION
    parser_classes = TILL_PARSERS
    renderer_classes = TILL_RENDERERS
    permission_classes = [IsRegister]

    @extend_schema(
        operation_id="scan_code",
        summary="Look up a scanned code at the register's location",
        description=(
            "For a register token. Accepts EAN-8, EAN-13, UPC-A and GTIN-14 (normalized to GTIN-14, so a UPC-A "
            "finds its EAN-13 twin), pack barcodes (quantity = units per pack) and in-store scale labels "
            "(EAN-13 with prefix 20-29, read by the prefix's configured layout: weight in grams or price in "
            "cents, with the GS1 verifier digit where the layout has one). Answers the article, the quantity the "
            "code stands for, today's price in the register's price group, and on hand / available at the "
            "register's location. A wrong check digit is a 400 saying so; an unknown code a 404 echoing it."
        ),
        parameters=[
            OpenApiParameter("code", OpenApiTypes.STR, OpenApiParameter.PATH, description="The scanned digits.")
        ],
        responses={
            200: s.ScanOut,
            **ERRORS,
            404: OpenApiResponse(s.ErrorsOut, description="No article carries this code (echoed)."),
        },
        examples=[
            OpenApiExample("EAN-13", value=SCAN_EXAMPLE, response_only=True, status_codes=["200"]),
            OpenApiExample("Scale label, 1250 g", value=SCALE_EXAMPLE, response_only=True, status_codes=["200"]),
            OpenApiExample(
                "Wrong check digit",
                value={
                    "errors": [
                        {
                            "field": "code",
                            "code": "check_digit",
                            "reason": "barcode '4006381333932' has check digit 2, expected 1 (EAN-13)",
                        }
                    ]
                },
                response_only=True,
                status_codes=["400"],
            ),
            OpenApiExample(
                "Unknown code",
                value={
                    "errors": [{"field": "code", "code": "not_found", "reason": "no article with barcode '96385074'"}]
                },
                response_only=True,
                status_codes=["404"],
            ),
        ],
        tags=["point of sale"],
    )
    def get(self, request, code: str):
        answer = register_scan(register=_register(request), code=code)
        return Response(answer.as_dict())


SALE_REQUEST_EXAMPLE = {
    "lines": [
        {"code": "4006381333931", "quantity": "2", "price": "1.99"},
        {"code": "2101234012505", "quantity": "1", "price": "16.00"},
        {"sku": "BAG-01", "quantity": "1", "price": "0.10", "discount": "0.10"},
    ],
    "payments": [{"method": "card", "amount": "19.98"}],
    "customer": {"customer_no": "C-1001", "name": "Ada Lovelace", "card_no": "LOY-7781"},
}
SALE_RESPONSE_EXAMPLE = {
    "receipt_no": "L-5d41402abc4b2a76b9719d911017c5",
    "register": "R1",
    "location": "S1",
    "created_at": "2026-03-02T09:14:03.120000+00:00",
    "total": "19.98",
    "currency": "EUR",
    "lines": [
        {
            "line_no": 1,
            "sku": "PEN-01",
            "code": "4006381333931",
            "quantity": "2.000",
            "price": "1.99",
            "on_hand": "40.000",
        },
        {
            "line_no": 2,
            "sku": "CHEESE-GOUDA",
            "code": "2101234012505",
            "quantity": "1.250",
            "price": "16.00",
            "on_hand": "7.165",
        },
        {"line_no": 3, "sku": "BAG-01", "code": None, "quantity": "1.000", "price": "0.10", "on_hand": "311.000"},
    ],
    "flags": [
        {
            "line_no": 3,
            "field": "lines[2].price",
            "code": "price_mismatch",
            "sent": "0.10",
            "expected": "0.15",
            "reason": "the till charged 0.10, master data says 0.15",
        }
    ],
}


class SaleView(APIView):
    authentication_classes = TILL_AUTHENTICATION
    parser_classes = TILL_PARSERS
    renderer_classes = TILL_RENDERERS
    permission_classes = [IsRegister]

    @extend_schema(
        operation_id="sale_record",
        summary="Record a sale (or return) in real time",
        description=(
            "For a register token, with an `Idempotency-Key` header. Stock at the register's location drops in "
            "the same transaction; the answer gives each line's new on hand. A retry with the same key and body "
            "returns the first answer (header `Idempotent-Replayed: true`) and moves nothing; the same key with "
            "another body is a 409. Negative quantities are returns and put stock back. A sale that would take a "
            "location refusing negative stock below zero is refused whole (400 naming the line and the reason). "
            "A price that differs from master data is accepted and reported in `flags`."
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="Unique per sale on this register (e.g. the till's receipt UUID); at most 120 characters.",
            ),
            OpenApiParameter(
                "Idempotent-Replayed",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[201],
                description="`true` when this answer is the stored answer to an earlier request with the same key.",
            ),
        ],
        request=s.SaleIn,
        responses={
            201: s.SaleOut,
            **ERRORS,
            409: OpenApiResponse(s.ErrorsOut, description="The key was used for another sale."),
        },
        examples=[
            OpenApiExample("Three lines, card payment", value=SALE_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Recorded", value=SALE_RESPONSE_EXAMPLE, response_only=True, status_codes=["201"]),
            OpenApiExample(
                "Refused: negative stock",
                value={
                    "errors": [
                        {
                            "field": "lines[0].quantity",
                            "code": "negative_stock",
                            "reason": "would leave -1.000 on hand (now 0.000); this location refuses negative stock",
                        }
                    ]
                },
                response_only=True,
                status_codes=["400"],
            ),
            OpenApiExample(
                "Key reused for another sale",
                value={
                    "errors": [
                        {
                            "field": "Idempotency-Key",
                            "code": "conflict",
                            "reason": "key 'till-7-000123' was used before for a different sale",
                        }
                    ]
                },
                response_only=True,
                status_codes=["409"],
            ),
        ],
        tags=["point of sale"],
    )
    def post(self, request):
        register = _register(request)
        v = s.sale_in_plain(request.data)
        if v is None:
            data = s.SaleIn(data=request.data)
            data.is_valid(raise_exception=True)
            v = data.validated_data
        customer = v.get("customer")
        outcome = live_sale_post(
            register=register,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            lines=[
                SaleLine(
                    code=line.get("code", ""),
                    sku=line.get("sku", ""),
                    quantity=line["quantity"],
                    price=line["price"],
                    discount=line.get("discount", 0),
                )
                for line in v["lines"]
            ],
            payments=[SalePayment(method=p["method"], amount=p["amount"]) for p in v["payments"]],
            customer=CustomerSpec(**customer) if customer else None,
            receipt_no=v.get("receipt_no"),
        )
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        return Response(outcome.body, status=status.HTTP_201_CREATED, headers=headers)


class RfidReadView(APIView):
    authentication_classes = TILL_AUTHENTICATION
    parser_classes = TILL_PARSERS
    renderer_classes = TILL_RENDERERS
    permission_classes = [IsRegisterOrStaff]

    @extend_schema(
        operation_id="rfid_read_post",
        summary="Post an RFID read as a stock count for the articles seen",
        description=(
            "EPCs in hex (SGTIN-96) are decoded to GTIN and serial; the distinct tags per article (times the "
            "pack quantity of the GTIN) are posted as one count per article at the location. EPCs of other "
            "schemes, malformed ones and GTINs without an article are listed under `result.unknown` and change "
            "nothing. The same `read_id` again returns the first read (200)."
        ),
        request=s.RfidReadIn,
        responses={
            201: s.RfidReadOut,
            200: s.RfidReadOut,
            **ERRORS,
            404: OpenApiResponse(s.ErrorsOut, description="No location with that code."),
        },
        examples=[
            OpenApiExample(
                "Gate read",
                value={"read_id": "gate-2-000981", "epcs": ["3074257BF7194E4000001A85", "31143A1E1A0B05C0F4240000"]},
                request_only=True,
            )
        ],
        tags=["point of sale"],
    )
    def post(self, request):
        data = s.RfidReadIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if isinstance(request.user, DevicePrincipal):
            register = _register(request)
            location_code, origin = register.location.code, StockOrigin(kind="register", code=register.code)
        else:
            if not v["location"]:
                raise InvalidInput([Problem(field="location", code="required", reason="required for a staff user")])
            location_code, origin = v["location"], StockOrigin(kind="user", code=request.user.get_username())
        read, created = rfid_read_post(
            location_code=location_code,
            epcs=v["epcs"],
            read_at=v["read_at"],
            read_id=v["read_id"],
            reader=v["reader"],
            origin=origin,
        )
        return Response(s.RfidReadOut(read).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class StockMatrixView(APIView):
    """The stock matrix for other tools (the admin page shows the same)."""

    @extend_schema(
        operation_id="stock_matrix",
        summary="Articles by locations: on hand and reorder point per cell",
        parameters=[
            OpenApiParameter("category", OpenApiTypes.STR),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=Location.Kind.values, description="location kind"),
            OpenApiParameter("below", OpenApiTypes.BOOL, description="only articles below a reorder point"),
            OpenApiParameter("q", OpenApiTypes.STR, description="SKU or name contains"),
            OpenApiParameter("page", OpenApiTypes.INT),
        ],
        responses={200: s.StockMatrixOut, 400: s.ErrorsOut},
        tags=["multi-store"],
    )
    def get(self, request):
        params = s.StockMatrixQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        v = params.validated_data
        matrix = stock_matrix(
            category=v["category"], location_kind=v["kind"], below_reorder=v["below"], search=v["q"], page=v["page"]
        )
        return Response(s.StockMatrixOut(matrix).data)


def _transfers():
    return TransferOrder.objects.select_related("source", "destination").prefetch_related(
        Prefetch("lines", queryset=TransferLine.objects.select_related("article").order_by("line_no"))
    )


class TransferListView(GenericAPIView):
    permission_classes = [StaffWithPermissions]
    required_permissions = {"GET": ["retail.view_transferorder"], "POST": ["retail.add_transferorder"]}
    serializer_class = s.TransferOut

    @extend_schema(
        operation_id="transfers_list",
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=TransferOrder.Status.values)],
        responses={200: s.TransferOut(many=True)},
        tags=["transfers"],
    )
    def get(self, request):
        queryset = _transfers().order_by("-created_at")
        status_filter = request.query_params.get("status")
        if status_filter:
            if status_filter not in TransferOrder.Status.values:
                raise InvalidInput([Problem(field="status", reason=f"one of {', '.join(TransferOrder.Status.values)}")])
            queryset = queryset.filter(status=status_filter)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.TransferOut(page, many=True).data)

    @extend_schema(
        operation_id="transfers_create",
        request=s.TransferIn,
        responses={201: s.TransferOut, **ERRORS},
        tags=["transfers"],
    )
    def post(self, request):
        data = s.TransferIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        order = transfer_create(
            source_code=v["source"],
            destination_code=v["destination"],
            lines=[TransferLineSpec(sku=line["sku"], quantity=line["quantity"]) for line in v["lines"]],
            note=v["note"],
            created_by=request.user.get_username(),
        )
        return Response(s.TransferOut(_transfers().get(pk=order.pk)).data, status=status.HTTP_201_CREATED)


def _transfer_answer(number: str, code: int = status.HTTP_200_OK) -> Response:
    return Response(s.TransferOut(_transfers().get(number=number)).data, status=code)


class TransferDetailView(APIView):
    permission_classes = [StaffWithPermissions]
    required_permissions = {"GET": ["retail.view_transferorder"]}

    @extend_schema(operation_id="transfers_read", responses={200: s.TransferOut, 404: s.ErrorsOut}, tags=["transfers"])
    def get(self, request, number: str):
        if not TransferOrder.objects.filter(number=number).exists():
            raise NotFound([Problem(field="number", code="not_found", reason=f"no transfer order {number!r}")])
        return _transfer_answer(number)


class TransferShipView(APIView):
    permission_classes = [StaffWithPermissions]
    required_permissions = {"POST": ["retail.change_transferorder"]}

    @extend_schema(
        operation_id="transfers_ship",
        request=None,
        responses={200: s.TransferOut, **ERRORS, 409: s.ErrorsOut},
        description="Stock leaves the source (one ledger batch). Only a draft can ship.",
        tags=["transfers"],
    )
    def post(self, request, number: str):
        transfer_ship(number=number, user=request.user.get_username())
        return _transfer_answer(number)


class TransferReceiveView(APIView):
    permission_classes = [StaffWithPermissions]
    required_permissions = {"POST": ["retail.change_transferorder"]}

    @extend_schema(
        operation_id="transfers_receive",
        request=s.ReceiveIn,
        responses={200: s.TransferOut, **ERRORS, 409: s.ErrorsOut},
        description="Stock arrives at the destination (one ledger batch); partial receipts allowed.",
        tags=["transfers"],
    )
    def post(self, request, number: str):
        data = s.ReceiveIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        lines = v["lines"]
        transfer_receive(
            number=number,
            quantities=None if lines is None else {line["line_no"]: line["quantity"] for line in lines},
            key=v["key"],
            user=request.user.get_username(),
        )
        return _transfer_answer(number)


class TransferCancelView(APIView):
    permission_classes = [StaffWithPermissions]
    required_permissions = {"POST": ["retail.change_transferorder"]}

    @extend_schema(
        operation_id="transfers_cancel",
        request=None,
        responses={200: s.TransferOut, 409: s.ErrorsOut},
        tags=["transfers"],
    )
    def post(self, request, number: str):
        transfer_cancel(number=number)
        return _transfer_answer(number)
