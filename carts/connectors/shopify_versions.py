"""The Shopify Admin API versions posinv supports, and what differs between
them (docs/carts.md). Kept apart from the connector so the model's field
choices can name them without importing the connector machinery.

From 2026-04 `inventorySetQuantities` takes `changeFromQuantity` on each
quantity (null opts out; stale → CHANGE_FROM_QUANTITY_STALE); earlier
versions take `compareQuantity` on each quantity, or
`ignoreCompareQuantity: true` on the input (stale → COMPARE_QUANTITY_STALE),
and know no `changeFromQuantity`. Shopify retires a version about a year
after its release: add the new one here, drop the retired one, and the
admin offers exactly these."""
from __future__ import annotations

CHANGE_FROM_SINCE = "2026-04"
SHOPIFY_API_VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")
SHOPIFY_DEFAULT_VERSION = "2026-04"
SHOPIFY_VERSION_CHOICES = [
    (v, f"{v} ({'changeFromQuantity' if v >= CHANGE_FROM_SINCE else 'compareQuantity'})")
    for v in SHOPIFY_API_VERSIONS
]


def uses_change_from(version: str) -> bool:
    """Whether this version's quantities carry changeFromQuantity (else compareQuantity)."""
    return version >= CHANGE_FROM_SINCE
