"""Models of the cabinets app."""
