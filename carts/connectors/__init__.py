"""One module per platform; importing this package registers them all."""
from carts.connectors import oscar, shopify, webhook, woocommerce  # noqa: F401
from carts.connectors.base import connector_class, platforms  # noqa: F401
