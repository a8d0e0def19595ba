"""The register API. On the main system: a register pushes entries and
reads its settings; staff read registers and receipts. On a register node:
the till records sales, and the main system pulls the outbox, acknowledges
and asks for a push. Views validate, call one service, and render."""
from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from pos.api import serializers as s
from pos.api.auth import IsThisRegisterOrStaff, MayAskToPush, NodeNudgeAuthentication, NodeTokenAuthentication
from pos.models import CashRegister, Receipt, ReceiptLine
from pos.services.apply import entries_receive, register_gap
from pos.services.node import is_node, node_register, outbox_ack, outbox_page
from pos.services.receipts import (
    CustomerSpec,
    LineSpec,
    PaymentSpec,
    pos_process_close,
    pos_process_open,
    receipt_record,
    stock_count_record,
)
from pos.services.transfer import entries_state_counts
from posinv.api.auth import TokenAuthentication
from posinv.api.permissions import IsOwnDevice
from posinv.api.serializers import ErrorsOut
from posinv.queueing import enqueue


def _main_register(code: str) -> CashRegister:
    if is_node():
        raise NotFound("This is a register node; registers push to the main system.")
    return get_object_or_404(CashRegister.objects.select_related("location"), code=code, active=True)


class RegisterEntriesView(APIView):
    """Push: a register posts its entries."""

    # Plain JSON: the envelope is judged by batch_problems and each record by
    # itself, so text no database can store in one record fails that entry
    # alone instead of refusing the batch (StorableJSONParser elsewhere).
    parser_classes = [JSONParser]

    permission_classes = [IsOwnDevice]
    device_kind = "register"

    @extend_schema(
        request=s.EntryBatchIn,
        responses={200: s.EntryBatchOut, 400: ErrorsOut, 401: ErrorsOut, 403: ErrorsOut, 409: s.EntryBatchOut,
                   413: ErrorsOut},
        summary="Push synchronization entries (register contract)",
        description=(
            "Applied in entry-no. order, idempotently: a duplicate gets its first result again; the same "
            "entry no. with other content is kept as a conflict and the answer is 409 (with the same body). "
            "A gap holds later entries (`waiting`, `missing`). An entry the main system cannot apply (a record "
            "field it refuses, a table it does not know, a stock level that would overflow) is kept failed with "
            "its reason (`failures`) and does not hold the others back. A malformed envelope (entries not a "
            "list, an entry no., record id or record object missing or wrong) is answered 400 naming "
            "`entries[i].field` and nothing of it is applied; more entries than the register's records per run "
            "is 413 with the `limit`. `last_applied_entry_no` is the main system's watermark for the register: "
            "a node sends again whatever it took as delivered after it."
        ),
    )
    def post(self, request, code: str):
        register = _main_register(code)
        entries = request.data.get("entries") if isinstance(request.data, dict) else None
        if isinstance(entries, list) and len(entries) > register.records_per_run:
            limit = register.records_per_run
            return Response(
                {
                    "errors": [
                        {
                            "field": "entries",
                            "code": "too_large",
                            "reason": f"{len(entries)} entries; at most {limit} per request for register {code}",
                        }
                    ],
                    "limit": limit,
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        if entries is None:
            entries = request.data.get("entries", "missing") if isinstance(request.data, dict) else "missing"
        result = entries_receive(register_id=register.pk, entries=entries)
        code_ = status.HTTP_409_CONFLICT if result.conflicts else status.HTTP_200_OK
        return Response(s.EntryBatchOut(result.as_dict()).data, status=code_)


class RegisterSettingsView(APIView):
    """A register node fetches its settings (the main system's admin is the one place to configure)."""

    permission_classes = [IsOwnDevice]
    device_kind = "register"

    @extend_schema(responses={200: s.RegisterSettingsOut}, summary="The register's synchronization settings",
                   description="Also the main system's watermark (`last_applied_entry_no`): a node asks for it "
                   "every run with nothing to send, and sends again what the main system no longer holds.")
    def get(self, request, code: str):
        return Response(s.RegisterSettingsOut(_main_register(code)).data)


class RegisterStatusView(APIView):
    """Staff: one register's state (watermark, gap, entries by state, receipts)."""

    @extend_schema(responses={200: s.RegisterStatusOut}, summary="A register's synchronization state")
    def get(self, request, code: str):
        register = _main_register(code)
        data = s.RegisterSettingsOut(register).data
        data.update(
            last_success_at=register.last_success_at,
            last_error=register.last_error,
            missing=register_gap(register_id=register.pk, last_applied=register.last_applied_entry_no),
            entries=entries_state_counts(register_id=register.pk),
            receipts=Receipt.objects.filter(register=register).count(),
        )
        return Response(data)


class RegisterReceiptListView(generics.ListAPIView):
    """Staff: a register's receipts with lines and payments, newest first."""

    serializer_class = s.ReceiptOut

    @extend_schema(
        parameters=[OpenApiParameter("receipt_no", str, description="one receipt")],
        summary="Receipts of a register (paginated)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        register = _main_register(self.kwargs["code"])
        queryset = (
            Receipt.objects.filter(register=register)
            .select_related("register", "process", "customer")
            .prefetch_related(
                Prefetch("lines", queryset=ReceiptLine.objects.order_by("line_no")), "payments"
            )
            .order_by("-created_at", "-pk")
        )
        number = self.request.query_params.get("receipt_no")
        return queryset.filter(receipt_no=number) if number else queryset


# --- register node -------------------------------------------------------


class NodeView(APIView):
    authentication_classes = [NodeTokenAuthentication, TokenAuthentication]
    permission_classes = [IsThisRegisterOrStaff]
    schema_error_answers = {404: "Not a register node: only a node (POSINV_NODE=register) serves this."}

    def initial(self, request, *args, **kwargs):
        if not is_node():
            raise NotFound("Only a register node (POSINV_NODE=register) serves this.")
        super().initial(request, *args, **kwargs)


class TillReceiptView(NodeView):
    @extend_schema(request=s.TillReceiptIn, responses={201: s.TillReceiptOut, 200: s.TillReceiptOut,
                                                        400: ErrorsOut, 409: ErrorsOut},
                   summary="Record a sale on the register node (till software)")
    def post(self, request):
        data = s.TillReceiptIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        recorded = receipt_record(
            register=node_register(),
            receipt_no=v["receipt_no"],
            created_at=v["created_at"],
            process_no=v["process_no"],
            cashier=v["cashier"],
            total=v["total"],
            currency=v["currency"],
            customer=CustomerSpec(**v["customer"]) if v["customer"] else None,
            lines=[LineSpec(**line) for line in v["lines"]],
            payments=[PaymentSpec(**payment) for payment in v["payments"]],
        )
        body = {"receipt_no": recorded.receipt.receipt_no, "duplicate": recorded.duplicate,
                "entry_nos": recorded.entry_nos}
        return Response(s.TillReceiptOut(body).data, status=200 if recorded.duplicate else 201)


class TillProcessOpenView(NodeView):
    @extend_schema(request=s.ProcessIn, responses={201: None}, summary="Open a POS process (till session)")
    def post(self, request):
        data = s.ProcessIn(data=request.data)
        data.is_valid(raise_exception=True)
        process = pos_process_open(register=node_register(), **data.validated_data)
        return Response({"process_no": process.process_no, "status": process.status}, status=201)


class TillProcessCloseView(NodeView):
    @extend_schema(request=s.ProcessCloseIn, responses={200: None}, summary="Close a POS process")
    def post(self, request, process_no: str):
        data = s.ProcessCloseIn(data=request.data)
        data.is_valid(raise_exception=True)
        process = pos_process_close(register=node_register(), process_no=process_no, **data.validated_data)
        return Response({"process_no": process.process_no, "status": process.status})


class TillStockCountView(NodeView):
    @extend_schema(request=s.StockCountIn, responses={201: None}, summary="Record a stock count at the register")
    def post(self, request):
        data = s.StockCountIn(data=request.data)
        data.is_valid(raise_exception=True)
        count = stock_count_record(register=node_register(), **data.validated_data)
        return Response({"sku": count.sku, "counted_qty": str(count.counted_qty)}, status=201)


class OutboxView(NodeView):
    @extend_schema(parameters=[s.OutboxQueryIn], responses={200: s.OutboxPageOut},
                   summary="Pull: outbox entries after an entry no.")
    def get(self, request):
        query = s.OutboxQueryIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(outbox_page(**query.validated_data))


class OutboxAckView(NodeView):
    @extend_schema(request=s.OutboxAckIn, responses={200: s.OutboxAckOut},
                   summary="Pull: the main system has applied everything through N")
    def post(self, request):
        data = s.OutboxAckIn(data=request.data)
        data.is_valid(raise_exception=True)
        marked = outbox_ack(through=data.validated_data["through"])
        return Response({"through": data.validated_data["through"], "marked": marked})


class PushNowView(NodeView):
    # The only node endpoint the token's hash opens: it just makes the node
    # send its own entries, with its own token, to the main system.
    authentication_classes = [NodeTokenAuthentication, NodeNudgeAuthentication, TokenAuthentication]
    permission_classes = [MayAskToPush]

    @extend_schema(request=None, responses={202: None}, summary="Ask the node to push its entries now")
    def post(self, request):
        enqueue("pos.jobs.register_push_job", unique_key="register-push-now", ttl=300)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
