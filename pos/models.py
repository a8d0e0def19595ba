"""Models of the pos app."""
