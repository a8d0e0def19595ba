"""Manual stock corrections by a person: an adjustment (a signed quantity) or
a count (the quantity found), always with a reason, always through the
ledger, so the correction is a new move and the history stays intact."""

from __future__ import annotations

from decimal import Decimal

from posinv.exceptions import InvalidInput, Problem
from posinv.models import Origin, StockMove
from posinv.services.ledger import MoveResult, MoveSpec, StockOrigin, stock_moves_post


def stock_adjust(
    *,
    article_id: int,
    location_id: int,
    reason: str,
    username: str,
    idempotency_key: str,
    quantity: Decimal | None = None,
    counted: Decimal | None = None,
) -> MoveResult:
    """Post one correction by user `username`: give `quantity` (added, may be
    negative) or `counted` (the absolute quantity found), never both. The key
    comes from the form that was shown, so submitting it twice posts once.
    Raises InvalidInput or LedgerRefused with the field and reason."""
    reason = (reason or "").strip()
    problems = []
    if not reason:
        problems.append(Problem(field="reason", reason="say why stock is corrected", code="required"))
    if (quantity is None) == (counted is None):
        problems.append(Problem(field="quantity", reason="give either a quantity to add or a counted quantity"))
    if problems:
        raise InvalidInput(problems)
    spec = MoveSpec(
        kind=StockMove.Kind.COUNT if counted is not None else StockMove.Kind.ADJUSTMENT,
        idempotency_key=idempotency_key,
        quantity=quantity,
        counted=counted,
        article_id=article_id,
        location_id=location_id,
        reason=reason,
        reference=f"manual by {username}"[:120],
    )
    result = stock_moves_post(moves=[spec], origin=StockOrigin(kind=Origin.USER, code=username))
    return result.results[0]
