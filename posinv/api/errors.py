"""One error shape for the whole API:
`{"errors": [{"field": "entries[3].sku", "reason": "...", "code": "..."}]}`
with 400 for bad input, 404/409 for domain refusals."""
from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from posinv.exceptions import DomainError


def _flatten(detail, prefix: str = "") -> list[dict]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if key == "non_field_errors":
                name = prefix
            elif isinstance(key, int) or str(key).isdigit():
                # DRF reports a list's items as {index: errors}: name them `moves[3]`.
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out += _flatten(value, name)
        return out
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) or isinstance(item, str) for item in detail):
            return [_problem(prefix, item) for item in detail]
        out = []
        for index, item in enumerate(detail):
            if item:
                out += _flatten(item, f"{prefix}[{index}]")
        return out
    return [_problem(prefix, detail)]


def _problem(field: str, detail) -> dict:
    problem = {"reason": str(detail), "code": getattr(detail, "code", "invalid")}
    if field:
        problem["field"] = field
    return problem


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"errors": _flatten(exc.detail)}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"errors": [{"reason": str(detail), "code": getattr(detail, "code", "error")}]}
    return response
