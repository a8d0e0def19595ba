"""OpenAPI description of the register node's token scheme."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class NodeTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "pos.api.auth.NodeTokenAuthentication"
    name = "registerNodeToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <register token>` (the till, and the main system pulling); "
            "`Token <SHA-256 of it>` opens push-now only. Served by a register node only (POSINV_NODE=register).",
        }
