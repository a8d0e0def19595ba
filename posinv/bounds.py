"""The one bound on quantities and amounts, for the whole system.

Every quantity (a move, a counted figure, a level, an order line, a feed's
stock figure) and every amount (a price, a discount, a payment, a receipt
total) is at most 9 digits before the decimal point:

    |quantity| <= QUANTITY_MAX = 999,999,999.999  (3 decimal places)
    |amount|   <= AMOUNT_MAX   = 999,999,999.99   (2 decimal places)

Why 9 digits: every store of a figure must hold it, including sums.
- A level is a sum of moves, so the ledger bounds the level too (a move
  that would take a level beyond the bound is refused), not only each move.
  A move is then at most 2 x QUANTITY_MAX (a count from -max to +max), which
  the ledger's numeric(14, 3) columns hold with room to spare, and report
  sums of many moves fit their numeric(18+, 3) columns.
- The figure a cart publishes is a whole number at most QUANTITY_MAX
  (999,999,999), which fits a 32-bit integer (Shopify's Int, our integer
  columns) and stays below Shopify's limit of 1,000,000,000 per quantity.
- A receipt's total is bounded like its amounts, so a live sale or a
  register entry cannot overflow the numeric(14, 2) total columns.

Entrances refuse a figure beyond the bound with a 400 naming the field
(`posinv.api.fields.QuantityField` / `AmountField` in serializers,
`quantity_problem` / `amount_problem` elsewhere); the ledger is the last
line of defence for levels. See docs/ledger.md ("Bounds")."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

QUANTITY_PLACES = 3
AMOUNT_PLACES = 2
WHOLE_DIGITS = 9
QUANTITY_MAX = Decimal("999999999.999")
AMOUNT_MAX = Decimal("999999999.99")
# The largest whole figure a channel publishes (available to sell).
PUBLISHED_QUANTITY_MAX = int(QUANTITY_MAX)


def _shown(value: Decimal) -> str:
    return f"{value:,f}"


QUANTITY_RANGE_TEXT = f"between -{_shown(QUANTITY_MAX)} and {_shown(QUANTITY_MAX)}"
AMOUNT_RANGE_TEXT = f"between -{_shown(AMOUNT_MAX)} and {_shown(AMOUNT_MAX)}"


# How a decimal figure is written at every entrance: digits with an optional
# point and sign. Python's Decimal also reads "1e400", "1_000", " 1 ", "NaN"
# and "sNaN", which a till or a register never means (and some of which fail
# later, deep in a quantize).
_DECIMAL_TEXT = re.compile(r"-?\d{1,40}(\.\d{1,40})?")


def decimal_text_problem(text: str) -> str | None:
    """Why `text` is not a plain decimal figure ("-12.50"), or None."""
    if _DECIMAL_TEXT.fullmatch(text):
        return None
    return (f"{text[:40]!r} is not a plain decimal number (digits, an optional sign and point; "
            "no exponent, spaces or underscores)")


def _as_decimal(value) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def quantity_within(value) -> bool:
    """True if `value` is a finite number within the quantity bound."""
    number = _as_decimal(value)
    return number is not None and number.is_finite() and abs(number) <= QUANTITY_MAX


def amount_within(value) -> bool:
    """True if `value` is a finite number within the amount bound."""
    number = _as_decimal(value)
    return number is not None and number.is_finite() and abs(number) <= AMOUNT_MAX


def quantity_problem(value) -> str | None:
    """Why `value` is beyond the quantity bound (None if it is within, or not
    a number at all: the caller's own parsing reports that)."""
    number = _as_decimal(value)
    if number is None or not number.is_finite() or abs(number) <= QUANTITY_MAX:
        return None
    return f"must be {QUANTITY_RANGE_TEXT} (the system's quantity bound)"


def amount_problem(value) -> str | None:
    """Why `value` is beyond the amount bound (None if within or not a number)."""
    number = _as_decimal(value)
    if number is None or not number.is_finite() or abs(number) <= AMOUNT_MAX:
        return None
    return f"must be {AMOUNT_RANGE_TEXT} (the system's amount bound)"


def level_problem(value) -> str | None:
    """Why a level (an on-hand figure) is beyond the bound, in words a person
    can act on (None if within)."""
    number = _as_decimal(value)
    if number is None or (number.is_finite() and abs(number) <= QUANTITY_MAX):
        return None
    return (
        f"on hand {number.normalize():f} is beyond the quantity bound ({QUANTITY_RANGE_TEXT}); "
        "correct this level with a count (Stock levels → Adjust…)"
    )


def published_quantity(value) -> int:
    """A whole available-to-sell figure a channel can store and send: rounded
    down, never below zero, never above PUBLISHED_QUANTITY_MAX."""
    number = _as_decimal(value)
    if number is None or number.is_nan():
        return 0
    if number >= PUBLISHED_QUANTITY_MAX:
        return PUBLISHED_QUANTITY_MAX
    return max(0, int(number.to_integral_value(rounding="ROUND_FLOOR")))


# Times at every entrance (a receipt's, a count's, a reading's): a wrong
# clock may say anything, but a year like 1 or 9999 only breaks what adds
# days to it later (the sales rollup, reports), long after it was accepted.
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)
TIME_RANGE_TEXT = "between 1970-01-01 and 2199-12-31 (UTC)"


def time_problem(value: datetime) -> str | None:
    """Why an aware time is outside the system's bound, or None."""
    try:
        within = TIME_MIN <= value.astimezone(UTC) < TIME_MAX
    except OverflowError:
        within = False
    return None if within else f"must be {TIME_RANGE_TEXT}"
