"""Models of the carts app."""
