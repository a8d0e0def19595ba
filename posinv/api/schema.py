"""OpenAPI description of the API as a client meets it: our token scheme
(`Authorization: Token <token>`) and the error answers every operation can
give, so that a client generated from `/api/schema/` knows every status it
may receive and the body that comes with it.

The error answers are derived from the view, not declared per view:

* 400 where a body or a query parameter is parsed (also `limit`/`offset`,
  posinv/api/pagination.py),
* 401 and 403 where a permission other than AllowAny guards the view,
* 404 where the path names an object (a device's code, an order number...),
* 415 where a body is parsed (a Content-Type no parser of the view accepts),
* 429 where `TokenAuthentication` counts failed tokens (posinv/api/throttling.py).

A view adds what cannot be derived in `schema_error_answers` (status ->
description). Explicit `@extend_schema(responses=...)` entries of a view
win: only the statuses it leaves out are added. Every error answer has the
one body `posinv.api.errors.exception_handler` produces, `ErrorsOut`."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny

from posinv.api.auth import TokenAuthentication
from posinv.api.serializers import ErrorsOut

BAD_INPUT = "Bad input: each error names the field and the reason; nothing was applied."
NO_TOKEN = "No token, or a wrong one (answered with `WWW-Authenticate: Token`)."
FORBIDDEN = (
    "The token is valid but may not call this: a device token of another kind or of another device, "
    "or a user without the permission."
)
NOT_FOUND = "Nothing exists under the identifier in the path."
UNSUPPORTED_MEDIA_TYPE = "The body's Content-Type is not one this operation reads (send application/json)."
TOO_MANY_FAILED_TOKENS = (
    "Too many wrong tokens from this client address within the minute; every token is refused "
    "until the minute is over (`Retry-After` seconds)."
)

_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with: `Token`.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until the current minute is over and tokens are looked at again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
_HEADERS = {401: _WWW_AUTHENTICATE, 429: _RETRY_AFTER}


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "posinv.api.auth.TokenAuthentication"
    match_subclasses = True
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`: a staff user's token (manage.py create_api_token) or a device token.",
        }


class ErrorAnswersAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error answers of the module
    docstring (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"])."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status_code, description in self.error_answers(operation).items():
            if str(status_code) in responses:
                continue  # the view documents this answer itself
            answer = self._get_response_for_code(OpenApiResponse(ErrorsOut, description=description),
                                                 str(status_code))
            if status_code in _HEADERS:
                answer["headers"] = _HEADERS[status_code]
            responses[str(status_code)] = answer
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_answers(self, operation: dict) -> dict[int, str]:
        """The error statuses this operation can answer, with a description each."""
        answers: dict[int, str] = {}
        parses_body = "requestBody" in operation
        if parses_body or self._parses_query(operation):
            answers[400] = BAD_INPUT
        if self._needs_credentials():
            if self.view.get_authenticators():
                answers[401] = NO_TOKEN
            answers[403] = FORBIDDEN
        if any(parameter["in"] == "path" for parameter in operation.get("parameters", ())):
            answers[404] = NOT_FOUND
        if parses_body:
            answers[415] = UNSUPPORTED_MEDIA_TYPE
        if any(isinstance(authenticator, TokenAuthentication) for authenticator in self.view.get_authenticators()):
            answers[429] = TOO_MANY_FAILED_TOKENS
        for status_code, description in getattr(self.view, "schema_error_answers", {}).items():
            derived = answers.get(status_code)
            answers[status_code] = f"{derived} Or: {description}" if derived else description
        return answers

    def _needs_credentials(self) -> bool:
        return not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions())

    def _parses_query(self, operation: dict) -> bool:
        return any(parameter["in"] == "query" for parameter in operation.get("parameters", ()))
