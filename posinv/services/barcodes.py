"""GS1 barcodes: check digits and normalization to GTIN-14, so an UPC-A and
its EAN-13 form (a leading zero) find the same article."""
from __future__ import annotations

from posinv.exceptions import InvalidInput, Problem

GTIN_LENGTHS = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13", 14: "GTIN-14"}


def gtin_check_digit(body: str) -> int:
    """Mod-10 check digit of `body` (the code without its last digit):
    weights 3 and 1 alternating from the rightmost digit."""
    total = 0
    for position, char in enumerate(reversed(body)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def gtin_normalize(code: str, *, field: str = "code") -> str:
    """Validate `code` (EAN-8, UPC-A, EAN-13 or GTIN-14) and return it as GTIN-14.

    Raises InvalidInput naming the field when the length, the characters or
    the check digit are wrong."""
    code = (code or "").strip()
    if not code.isdigit():
        raise InvalidInput([Problem(field=field, reason=f"barcode {code!r} must contain digits only")])
    if len(code) not in GTIN_LENGTHS:
        raise InvalidInput(
            [Problem(field=field, reason=f"barcode {code!r} has {len(code)} digits; expected 8, 12, 13 or 14")]
        )
    expected = gtin_check_digit(code[:-1])
    if int(code[-1]) != expected:
        raise InvalidInput(
            [
                Problem(
                    field=field,
                    code="check_digit",
                    reason=f"barcode {code!r} has check digit {code[-1]}, expected {expected} "
                    f"({GTIN_LENGTHS[len(code)]})",
                )
            ]
        )
    return code.zfill(14)


def gtin_kind(code: str) -> str:
    """The symbology a valid code of this length is printed as."""
    return GTIN_LENGTHS.get(len(code), "unknown")
