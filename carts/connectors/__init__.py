"""One module per platform; importing this package registers them all."""
from carts.connectors import baselinker, feed, oscar, shopify, webhook, woocommerce  # noqa: F401
from carts.connectors.base import connector_class, platforms  # noqa: F401
