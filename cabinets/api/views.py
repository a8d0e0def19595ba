"""The cabinet push API: `POST /api/v1/cabinets/{code}/readings/` with the
cabinet's own device token (DESIGN.md, "Cabinet readings")."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from cabinets.api.serializers import ReadingsAnswerSerializer, ReadingsInSerializer, readings_answer
from cabinets.models import WeighingCabinet, WeightReading
from cabinets.services.readings import readings_apply
from posinv.api.permissions import IsOwnDevice
from posinv.exceptions import NotFound


class CabinetReadingsView(APIView):
    """A cabinet pushes tray readings; each is applied, a duplicate or
    rejected with its reason. A malformed body is 400 and nothing is applied."""

    permission_classes = [IsOwnDevice]
    device_kind = "cabinet"

    @extend_schema(
        request=ReadingsInSerializer,
        responses={200: ReadingsAnswerSerializer},
        examples=[
            OpenApiExample(
                "One reading",
                value={"readings": [
                    {"tray_id": "T-0001", "weight_g": "1234.5", "position": "A-03", "read_at": "2026-05-03T10:00:00Z"}
                ]},
                request_only=True,
            )
        ],
    )
    def post(self, request, code: str):
        serializer = ReadingsInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cabinet = WeighingCabinet.objects.filter(code=code, active=True).first()
        if cabinet is None:
            raise NotFound(f"no active cabinet {code}")
        result = readings_apply(
            cabinet=cabinet, readings=serializer.validated_data["readings"], via=WeightReading.Via.PUSH
        )
        return Response(readings_answer(result), status=status.HTTP_200_OK)
