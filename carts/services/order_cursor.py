"""The one cursor rule for every order import: an overlapping (modified time,
order id) cursor, deduplicated, saved only after the orders it covers are
committed.

Why not "the newest modification seen": an import pages through a result set
that changes while it is read. An order on page 1 cancelled while page 2 is
fetched gets a modification time older than orders seen later, so a cursor
jumping to the newest one seen never asks for it again, and offset paging
over a set ordered by modification skips the order that slides back into a
page already read. So:

- every request starts from the committed cursor (keyset paging: page 1 of
  "modified at or after the cursor less the overlap"), and only reads on to
  page 2, 3 … of the same query while whole pages are already known;
- the query overlaps the cursor (the boundary second is asked again, plus the
  connector's `order_overlap_seconds` for writes stamped earlier but visible
  later); what it returns again is recognised by (order id, fingerprint of
  what we apply) and skipped, so an order changed twice in one second is
  applied twice, and one unchanged is not;
- the cursor advances past an order only after that order's transaction
  committed, and is stored after each page; a failing order stops the run
  there, so the next run starts with it again.

A connector takes part by implementing `fetch_orders_page(since=, page=)`
(carts/connectors/base.py); `orders_import` calls `orders_import_by_cursor`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.dateparse import parse_datetime

from carts.connectors.base import Connector, RemoteOrder, Throttled

# Runaway guard: a store changing orders faster than we read them still ends a run.
MAX_REQUESTS_PER_RUN = 1000
# Keys older cursors kept their time under (before this rule).
_LEGACY_KEYS = ("modified_after", "updated_at", "placed_at")


def order_fingerprint(order: RemoteOrder) -> str:
    """What order_apply acts on: a copy with the same fingerprint changes nothing."""
    content = [order.status, order.remote_status,
               [[line.line_id, line.sku, line.barcode, str(line.quantity), str(line.refunded_quantity)]
                for line in order.lines]]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]


@dataclass
class OrderCursor:
    """`modified_at`: the newest modification committed; `seen`: per order id
    committed within the overlap window, its modification time and
    fingerprint (what the next overlapping query will return again)."""

    modified_at: datetime | None = None
    seen: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, stored: dict | None) -> OrderCursor:
        stored = stored or {}
        stamp = stored.get("modified_at") or next((stored[k] for k in _LEGACY_KEYS if stored.get(k)), None)
        seen = {str(k): (v[0], v[1]) for k, v in (stored.get("seen") or {}).items()}
        return cls(modified_at=parse_datetime(stamp) if stamp else None, seen=seen)

    def dump(self) -> dict:
        return {"modified_at": self.modified_at.isoformat() if self.modified_at else None,
                "seen": {k: list(v) for k, v in sorted(self.seen.items())}}

    def since(self, overlap: float) -> datetime | None:
        return None if self.modified_at is None else self.modified_at - timedelta(seconds=overlap)

    def is_new(self, order: RemoteOrder) -> bool:
        known = self.seen.get(order.external_id)
        return known is None or known[1] != order_fingerprint(order)

    def advance(self, order: RemoteOrder, overlap: float) -> None:
        """Called once `order` is committed."""
        if order.updated_at is None:
            return  # cannot be placed on the time line; it will be read again
        self.seen[order.external_id] = (order.updated_at.isoformat(), order_fingerprint(order))
        if self.modified_at is None or order.updated_at > self.modified_at:
            self.modified_at = order.updated_at
        horizon = self.modified_at - timedelta(seconds=overlap + 1)
        self.seen = {k: v for k, v in self.seen.items() if parse_datetime(v[0]) >= horizon}


@dataclass
class CursorRun:
    applied: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    # The platform's limit stopped the run (a connector that does not wait
    # for it): the seconds it asked for. What was committed stays saved.
    throttled_for: float | None = None


def orders_import_by_cursor(*, connector: Connector, stored: dict | None,
                            apply: Callable[[RemoteOrder], object],
                            save: Callable[[dict], None]) -> CursorRun:
    """Read the store's orders from the cursor `stored`, `apply` each new or
    changed one (its own transaction), and `save` the cursor after each page.
    Stops at the first order that cannot be applied."""
    overlap = connector.order_overlap_seconds
    cursor = OrderCursor.load(stored)
    run = CursorRun()
    page = 1
    since = cursor.since(overlap)
    while run.requests < MAX_REQUESTS_PER_RUN:
        try:
            batch = connector.fetch_orders_page(since=since, page=page)
        except Throttled as exc:
            run.throttled_for = exc.retry_after
            break
        run.requests += 1
        fresh = [order for order in sorted(batch.orders, key=_position) if cursor.is_new(order)]
        before = cursor.dump()
        for remote in fresh:
            try:
                apply(remote)
            except Exception as exc:  # noqa: BLE001 - any failure stops the cursor here, with its reason
                run.failures.append(f"{remote.external_id}: {exc}")
                break
            run.applied += 1
            cursor.advance(remote, overlap)
        moved = cursor.dump() != before
        if moved:
            save(cursor.dump())
        if run.failures or not batch.more:
            break
        if moved:
            # Ask again from the committed cursor: offsets shift when orders
            # change while we read, so page 2 of the old query may skip one.
            since, page = cursor.since(overlap), 1
        else:
            page += 1  # a whole page already known (many orders in one window): read on
    return run


def _position(order: RemoteOrder):
    return (order.updated_at is None, order.updated_at or datetime.min, order.external_id.zfill(20))
