"""One error shape for the whole API:
`{"errors": [{"field": "entries[3].sku", "reason": "...", "code": "..."}]}`
with 400 for bad input, 404/409 for domain refusals, and the same shape for
DRF's own refusals (401, 403, 405, 415, 429...) and for a URL under /api/
that no operation answers (`page_not_found`, Django's handler404)."""
from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults
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


API_PREFIX = "/api/"


def page_not_found(request, exception):
    """Django's 404 for a URL no view matched: the API's error shape under
    /api/ (a client reading JSON must not get an HTML page, e.g. for a path
    parameter holding a "/" or a character its converter refuses), Django's
    page elsewhere. The path is not echoed."""
    if request.path.startswith(API_PREFIX):
        body = {"errors": [{"reason": "No API operation answers at this path.", "code": "not_found"}]}
        return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)
