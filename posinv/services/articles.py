"""Article master data: barcodes of an article and the lists written by the
article file import. Stock never changes here (that is the ledger's job)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from posinv.bounds import quantity_problem
from posinv.exceptions import InvalidInput, Problem
from posinv.services.barcodes import gtin_normalize

# Several barcodes in one cell: separated by "|", ";", "," or blanks. A pack
# barcode carries its units after a "*" (or "x"): "04006381333931*6".
BARCODE_SEPARATORS = re.compile(r"[|;,\s]+")
PACK_SUFFIX = re.compile(r"^(?P<code>\d+)\s*[*xX]\s*(?P<qty>[0-9.]+)$")


@dataclass(frozen=True)
class BarcodeSpec:
    """One parsed barcode of an article: as printed, as GTIN-14, units per scan."""

    code: str
    gtin: str
    pack_qty: Decimal = Decimal("1")


def barcodes_parse(*, text: str, field: str = "barcodes") -> list[BarcodeSpec]:
    """Parse a cell of barcodes ("4006381333931|04006381333931*6").

    Raises InvalidInput naming the field and the offending code (bad check
    digit, bad length, bad pack quantity, the same GTIN twice)."""
    specs: list[BarcodeSpec] = []
    seen: set[str] = set()
    for token in BARCODE_SEPARATORS.split((text or "").strip()):
        if not token:
            continue
        pack = Decimal("1")
        match = PACK_SUFFIX.match(token)
        if match:
            token = match["code"]
            try:
                pack = Decimal(match["qty"])
            except InvalidOperation:
                pack = Decimal("0")
            if pack <= 0 or pack != pack.quantize(Decimal("0.001")):
                raise InvalidInput(
                    [
                        Problem(
                            field=field, reason=f"pack quantity {match['qty']!r} of {token} must be a positive number"
                        )
                    ]
                )
            beyond = quantity_problem(pack)
            if beyond:
                raise InvalidInput([Problem(field=field, reason=f"pack quantity {match['qty']} of {token} {beyond}")])
        gtin = gtin_normalize(token, field=field)
        if gtin in seen:
            raise InvalidInput([Problem(field=field, reason=f"barcode {token} is listed twice")])
        seen.add(gtin)
        specs.append(BarcodeSpec(code=token, gtin=gtin, pack_qty=pack))
    return specs


def barcodes_format(*, barcodes) -> str:
    """The inverse of barcodes_parse, for exports: "code|code*6"."""
    parts = []
    for barcode in barcodes:
        pack = barcode.pack_qty.normalize()
        parts.append(barcode.code if pack == 1 else f"{barcode.code}*{pack:f}")
    return "|".join(parts)
