"""EPC decoding for RFID reads: SGTIN-96 (GS1 EPC Tag Data Standard) to
GTIN-14 and serial. Every other scheme is recognised by its header and
reported by name, never guessed at.

SGTIN-96 layout (96 bits): header 8 (0x30), filter 3, partition 3, GS1
company prefix + item reference 44 bits split by the partition table, serial
38. The GTIN is the item reference's first digit (the indicator), the company
prefix, the rest of the item reference and a mod-10 check digit."""

from __future__ import annotations

from dataclasses import dataclass

from posinv.services.barcodes import gtin_check_digit

SGTIN_96_HEADER = 0x30

# TDS table 14-2: partition value -> (company prefix bits, digits, item reference bits, digits).
SGTIN_PARTITIONS: dict[int, tuple[int, int, int, int]] = {
    0: (40, 12, 4, 1),
    1: (37, 11, 7, 2),
    2: (34, 10, 10, 3),
    3: (30, 9, 14, 4),
    4: (27, 8, 17, 5),
    5: (24, 7, 20, 6),
    6: (20, 6, 24, 7),
}

# Headers of the other schemes (TDS table 14-1), so a report can name them.
OTHER_HEADERS = {
    0x31: "SSCC-96",
    0x32: "SGLN-96",
    0x33: "GRAI-96",
    0x34: "GIAI-96",
    0x35: "GID-96",
    0x36: "SGTIN-198",
    0x37: "GRAI-170",
    0x38: "GIAI-202",
    0x39: "SGLN-195",
    0x3A: "GDTI-113",
    0x2C: "GDTI-96",
    0x2D: "GSRN-96",
    0x2E: "GSRNP-96",
    0x3B: "ADI-var",
    0x3C: "CPI-96",
    0x3D: "CPI-var",
    0x3E: "GDTI-174",
    0x3F: "SGCN-96",
    0x40: "ITIP-110",
    0x41: "ITIP-212",
    0xE2: "ISO/IEC 15963 TID (not an EPC)",
}


@dataclass(frozen=True)
class Sgtin:
    """A decoded SGTIN-96: the trade item (GTIN-14) and its serial number."""

    epc: str
    gtin: str
    serial: int
    filter_value: int
    partition: int


class EpcUnknown(ValueError):
    """An EPC that is not an SGTIN-96 we can decode; the message says why."""

    def __init__(self, reason: str, code: str = "unknown_scheme"):
        super().__init__(reason)
        self.reason = reason
        self.code = code


def sgtin96_decode(epc_hex: str) -> Sgtin:
    """Decode a 24-hex-digit SGTIN-96 EPC; raises EpcUnknown for anything else."""
    text = (epc_hex or "").strip().replace(" ", "").upper()
    if not text:
        raise EpcUnknown("empty EPC", code="invalid")
    try:
        value = int(text, 16)
    except ValueError:
        raise EpcUnknown(f"EPC {epc_hex!r} is not hexadecimal", code="invalid") from None
    header = int(text[:2], 16)
    if header != SGTIN_96_HEADER:
        scheme = OTHER_HEADERS.get(header)
        what = f"scheme {scheme}" if scheme else "an unknown scheme"
        raise EpcUnknown(f"header 0x{header:02X} is {what}; only SGTIN-96 (0x30) is decoded")
    if len(text) != 24:
        raise EpcUnknown(f"an SGTIN-96 EPC has 24 hex digits, this one {len(text)}", code="invalid")
    filter_value = (value >> 85) & 0b111
    partition = (value >> 82) & 0b111
    if partition not in SGTIN_PARTITIONS:
        raise EpcUnknown(f"partition value {partition} is not defined for SGTIN-96", code="invalid")
    prefix_bits, prefix_digits, item_bits, item_digits = SGTIN_PARTITIONS[partition]
    company = (value >> (38 + item_bits)) & ((1 << prefix_bits) - 1)
    item = (value >> 38) & ((1 << item_bits) - 1)
    serial = value & ((1 << 38) - 1)
    if company >= 10**prefix_digits:
        raise EpcUnknown(f"company prefix {company} has more than {prefix_digits} digits", code="invalid")
    if item >= 10**item_digits:
        raise EpcUnknown(f"item reference {item} has more than {item_digits} digits", code="invalid")
    item_text = str(item).zfill(item_digits)
    body = item_text[0] + str(company).zfill(prefix_digits) + item_text[1:]
    return Sgtin(
        epc=text, gtin=body + str(gtin_check_digit(body)), serial=serial, filter_value=filter_value, partition=partition
    )


def sgtin96_encode(*, gtin: str, serial: int, partition: int, filter_value: int = 1) -> str:
    """The SGTIN-96 EPC (hex) of a GTIN-14 and serial; the inverse of
    `sgtin96_decode`, used by tests and by label printing set-ups."""
    prefix_bits, prefix_digits, item_bits, item_digits = SGTIN_PARTITIONS[partition]
    gtin = gtin.zfill(14)
    company = int(gtin[1 : 1 + prefix_digits])
    item = int(gtin[0] + gtin[1 + prefix_digits : 13])
    if not 0 <= serial < 1 << 38:
        raise ValueError("an SGTIN-96 serial has at most 38 bits")
    value = SGTIN_96_HEADER
    value = (value << 3) | filter_value
    value = (value << 3) | partition
    value = (value << prefix_bits) | company
    value = (value << item_bits) | item
    value = (value << 38) | serial
    return f"{value:024X}"
