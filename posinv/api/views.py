"""Staff endpoints of the core: article lookup, stock levels, posting moves.
Each view validates with an input serializer, calls a selector or a
service, and renders with an output serializer."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from posinv.api.permissions import StaffWithPermissions
from posinv.api.serializers import (
    ArticleLookupIn,
    ArticleLookupOut,
    ErrorsOut,
    MoveBatchIn,
    MoveBatchOut,
    StockLevelFilterIn,
    StockLevelOut,
)
from posinv.exceptions import Conflict, InvalidInput, LedgerRefused, Problem
from posinv.models import Barcode
from posinv.selectors import article_current_prices, article_find, stock_level_list
from posinv.services.barcodes import gtin_normalize
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post


class ArticleLookupView(APIView):
    @extend_schema(
        parameters=[ArticleLookupIn],
        responses={200: ArticleLookupOut, 400: ErrorsOut, 404: ErrorsOut},
        summary="Find an article by SKU or barcode",
    )
    def get(self, request):
        query = ArticleLookupIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        match = article_find(code=query.validated_data["code"])
        data = {
            "matched_by": match.matched_by,
            "pack_qty": match.pack_qty,
            "article": match.article,
            "prices": article_current_prices(article=match.article),
        }
        return Response(ArticleLookupOut(data).data)


class StockLevelListView(generics.ListAPIView):
    serializer_class = StockLevelOut
    permission_classes = [StaffWithPermissions]
    required_permissions = {"GET": ["posinv.view_stocklevel"]}

    @extend_schema(
        parameters=[
            OpenApiParameter("location", str, description="location code"),
            OpenApiParameter("article", str, description="SKU or barcode"),
        ],
        summary="Stock levels by location and/or article (paginated)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = StockLevelFilterIn(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return stock_level_list(**query.validated_data)


class StockMoveBatchView(APIView):
    permission_classes = [StaffWithPermissions]
    required_permissions = {"POST": ["posinv.add_stockmove"]}

    @extend_schema(
        request=MoveBatchIn,
        responses={200: MoveBatchOut, 400: ErrorsOut, 409: ErrorsOut},
        summary="Post a batch of stock moves (idempotent per key)",
        description=(
            "All or nothing unless `partial`: a refused move refuses the batch (400 naming "
            "`moves[i].field`). A key posted before with other content is a 409. A replayed key "
            "is reported as `duplicate` with the first result and moves nothing."
        ),
    )
    def post(self, request):
        batch = MoveBatchIn(data=request.data)
        batch.is_valid(raise_exception=True)
        moves = batch.validated_data["moves"]
        specs = [_spec(index, move) for index, move in enumerate(moves)]
        origin = StockOrigin(kind="user", code=request.user.get_username())
        try:
            result = stock_moves_post(moves=specs, origin=origin, partial_ok=batch.validated_data["partial"])
        except LedgerRefused as exc:
            problems = [_in_batch(p) for p in exc.problems]
            if any(p.code == "conflict" for p in problems):
                raise Conflict(problems) from exc
            raise InvalidInput(problems) from exc
        results = []
        for item in result.results:
            results.append(
                {
                    "index": item.index,
                    "idempotency_key": item.idempotency_key,
                    "status": item.status,
                    "move_id": item.move_id,
                    "quantity": item.quantity,
                    "balance_after": item.balance_after,
                    "problem": _in_batch(item.problem).as_dict() if item.problem else None,
                }
            )
        data = {
            "posted": len(result.posted),
            "duplicates": len(result.duplicates),
            "refused": len(result.refused),
            "results": results,
        }
        return Response(MoveBatchOut(data).data)


def _in_batch(problem: Problem) -> Problem:
    """A ledger problem named as the API field: `moves[3].quantity`."""
    if problem.index is None:
        return problem
    field = f"moves[{problem.index}].{problem.field}" if problem.field else f"moves[{problem.index}]"
    return Problem(reason=problem.reason, field=field, code=problem.code)


def _spec(index: int, move: dict) -> MoveSpec:
    """A MoveSpec from a validated move; a barcode becomes its article, and a
    pack barcode multiplies the quantity by the units in the pack."""
    article_id, sku, factor = None, move.get("sku"), 1
    if "barcode" in move:
        field = f"moves[{index}].barcode"
        gtin = gtin_normalize(move["barcode"], field=field)
        barcode = Barcode.objects.filter(gtin=gtin).only("article_id", "pack_qty").first()
        if barcode is None:
            raise InvalidInput(
                [Problem(field=field, reason=f"unknown barcode {move['barcode']}", code="unknown_article")]
            )
        article_id, factor = barcode.article_id, barcode.pack_qty
    quantity = move.get("quantity")
    counted = move.get("counted")
    return MoveSpec(
        kind=move["kind"],
        idempotency_key=move["idempotency_key"],
        quantity=None if quantity is None else quantity * factor,
        counted=None if counted is None else counted * factor,
        sku=sku,
        article_id=article_id,
        location_code=move["location"],
        reference=move["reference"],
        reason=move["reason"],
    )
