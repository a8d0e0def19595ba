"""Business logic of the cabinets app: readings (the weight-to-quantity
rule), pulls from the vendor endpoint, and provisioning (cabinets, trays)."""
