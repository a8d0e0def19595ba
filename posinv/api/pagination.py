"""Paging of the API's lists: `?limit=&offset=`, refused with 400 when bad.

DRF's LimitOffsetPagination quietly falls back to its default for a limit or
offset it cannot read: a client asking for `offset=abc` got the first page
and could believe it had read further, and a limit past PostgreSQL's bigint
reached the database and answered 500."""
from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000
# Digits only, and few enough for int(): Python refuses to parse more than 4,300.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,30}")


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """`limit` 1..MAX_LIMIT (default PAGE_SIZE), `offset` 0 or more (default 0),
    each at most once; anything else is a 400 naming the parameter."""

    max_limit = MAX_LIMIT

    def get_limit(self, request):
        return self._whole_number(request, self.limit_query_param, minimum=1, maximum=self.max_limit,
                                  default=self.default_limit)

    def get_offset(self, request):
        return self._whole_number(request, self.offset_query_param, minimum=0, maximum=None, default=0)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
                  self.offset_query_param: {"minimum": 0}}
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters

    @staticmethod
    def _whole_number(request, name: str, *, minimum: int, maximum: int | None, default: int) -> int:
        values = request.query_params.getlist(name)
        if not values:
            return default
        if len(values) > 1:
            raise ValidationError({name: [f"give {name} once, not {len(values)} times"]})
        if not _WHOLE_NUMBER.fullmatch(values[0]):
            raise ValidationError({name: [f"must be a whole number, got {values[0][:20]!r}"]})
        number = int(values[0])
        if number < minimum or (maximum is not None and number > maximum):
            within = f"between {minimum} and {maximum}" if maximum is not None else f"{minimum} or more"
            raise ValidationError({name: [f"must be {within}, got {number}"]})
        return number
