"""Property test of the ledger: random batches of sales, receipts, counts and
adjustments over a few pairs, with replayed keys, replayed whole batches and
all-or-nothing or partial posting, checked against a small reference model.

After every batch: each pair's on_hand equals the sum of its moves and the
model's figure; a replayed batch moves nothing and reports duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posinv.exceptions import LedgerRefused
from posinv.models import StockLevel, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location

pytestmark = pytest.mark.django_db
ORIGIN = StockOrigin(kind="register", code="R-prop")
SKUS = ("P-A", "P-B")
LOCATIONS = ("OPEN", "STRICT")  # STRICT refuses negative stock


@dataclass(frozen=True)
class Template:
    """The content a key always stands for, so reusing a key is a true replay."""

    key: str
    kind: str
    sku: str
    location: str
    amount: Decimal

    def spec(self) -> MoveSpec:
        if self.kind == "count":
            return MoveSpec(
                kind="count", idempotency_key=self.key, counted=self.amount, sku=self.sku, location_code=self.location
            )
        return MoveSpec(
            kind=self.kind, idempotency_key=self.key, quantity=self.amount, sku=self.sku, location_code=self.location
        )


amounts = st.integers(min_value=1, max_value=9000).map(lambda n: Decimal(n) / 1000 * 3)


@st.composite
def templates(draw, index: int) -> Template:
    kind = draw(st.sampled_from(["sale", "receipt", "count", "adjustment"]))
    amount = draw(amounts).quantize(Decimal("0.001"))
    if kind == "sale":
        amount = -amount
    elif kind == "adjustment" and draw(st.booleans()):
        amount = -amount
    return Template(f"k{index}", kind, draw(st.sampled_from(SKUS)), draw(st.sampled_from(LOCATIONS)), amount)


@st.composite
def scenarios(draw):
    pool = [draw(templates(i)) for i in range(draw(st.integers(min_value=3, max_value=14)))]
    steps = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        if steps and draw(st.integers(0, 3)) == 0:
            steps.append(("replay", draw(st.integers(0, len(steps) - 1)), False))
        else:
            batch = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
            steps.append(("batch", batch, draw(st.booleans())))
    return steps


def model_post(state, posted, batch, partial):
    """The reference: what the ledger must do with `batch`. Returns statuses
    and, when the batch applies, the new state (else None)."""
    tentative, first_status, statuses = dict(state), {}, []
    for t in batch:
        pair = (t.sku, t.location)
        if t.key in posted:
            statuses.append("duplicate")
            continue
        if t.key in first_status:  # repeated in this batch: the first one's fate
            statuses.append("refused" if first_status[t.key] == "refused" else "duplicate")
            continue
        delta = t.amount - tentative[pair] if t.kind == "count" else t.amount
        after = tentative[pair] + delta
        if delta < 0 and after < 0 and t.location == "STRICT":
            status = "refused"
        else:
            tentative[pair] = after
            status = "posted"
        first_status[t.key] = status
        statuses.append(status)
    if "refused" in statuses and not partial:
        return statuses, None
    return statuses, tentative


def ledger_sums():
    levels = {
        (sku, loc): on_hand
        for sku, loc, on_hand in StockLevel.objects.values_list("article__sku", "location__code", "on_hand")
    }
    sums = {
        # SQLite sums decimals as floats: compare at the ledger's 3 places.
        (row["article__sku"], row["location__code"]): Decimal(str(row["total"])).quantize(Decimal("0.001"))
        for row in StockMove.objects.values("article__sku", "location__code").annotate(total=Sum("quantity"))
    }
    return levels, sums


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=scenarios())
def test_random_batches_keep_on_hand_equal_to_the_sum_of_moves(db, steps):
    with transaction.atomic():
        for sku in SKUS:
            make_article(sku=sku)
        make_location(code="OPEN")
        make_location(code="STRICT", refuse_negative=True)
        state = {(sku, loc): Decimal(0) for sku in SKUS for loc in LOCATIONS}
        posted: set[str] = set()
        history: list[tuple[list[Template], bool]] = []
        for step in steps:
            if step[0] == "replay":
                batch, partial = history[step[1]]
                moves_before = StockMove.objects.count()
                levels_before, _ = ledger_sums()
            else:
                batch, partial = step[1], step[2]
            statuses, new_state = model_post(state, posted, batch, partial)
            try:
                result = stock_moves_post(moves=[t.spec() for t in batch], origin=ORIGIN, partial_ok=partial)
            except LedgerRefused as refused:
                assert new_state is None, f"refused but the model posts: {refused}"
                assert [p.index for p in refused.problems] == [i for i, s in enumerate(statuses) if s == "refused"]
            else:
                assert new_state is not None
                assert [r.status for r in result.results] == statuses
                state = new_state
                posted |= {t.key for t, s in zip(batch, statuses, strict=True) if s == "posted"}
            history.append((batch, partial))

            levels, sums = ledger_sums()
            for pair, expected in state.items():
                assert levels.get(pair, Decimal(0)) == expected, pair
                assert sums.get(pair, Decimal(0)) == expected, pair
            if step[0] == "replay" and set(statuses) == {"duplicate"}:
                # A replay of keys that were all posted moves nothing at all.
                assert StockMove.objects.count() == moves_before
                assert levels == levels_before
        transaction.set_rollback(True)
