"""RFID reads: the EPCs a gate or handheld saw at a location, decoded
(SGTIN-96) to GTIN and serial, posted as one ledger batch of counts for the
articles seen (distinct serials times the pack quantity of the GTIN).
EPCs of other schemes, malformed ones and GTINs no article carries are
reported per EPC and change nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from posinv.exceptions import InvalidInput, NotFound, Problem
from posinv.models import Article, Barcode, Location, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from retail.models import RfidRead
from retail.services.epc import EpcUnknown, sgtin96_decode

MAX_EPCS = 20000
QTY = Decimal("0.001")


def rfid_read_post(
    *,
    location_code: str,
    epcs: Sequence[str],
    read_at: datetime | None = None,
    read_id: str = "",
    reader: str = "",
    origin: StockOrigin,
) -> tuple[RfidRead, bool]:
    """Decode and post one read; returns (read, created). The same `read_id`
    (default: a digest of location, time and EPCs) returns the first read."""
    if not epcs:
        raise InvalidInput([Problem(field="epcs", code="required", reason="a read needs at least one EPC")])
    if len(epcs) > MAX_EPCS:
        raise InvalidInput([Problem(field="epcs", reason=f"at most {MAX_EPCS} EPCs per read")])
    location = Location.objects.filter(code=location_code).first()
    if location is None:
        raise NotFound([Problem(field="location", code="not_found", reason=f"unknown location {location_code!r}")])
    read_at = read_at or timezone.now()
    if not read_id:
        digest = hashlib.sha256("\n".join([location_code, read_at.isoformat(), *sorted(epcs)]).encode()).hexdigest()
        read_id = f"auto-{digest[:32]}"

    unknown: list[dict] = []
    serials: dict[str, set[int]] = {}
    seen: set[str] = set()
    for index, epc in enumerate(epcs):
        try:
            tag = sgtin96_decode(epc)
        except EpcUnknown as exc:
            unknown.append({"index": index, "epc": epc, "code": exc.code, "reason": exc.reason})
            continue
        if tag.epc in seen:
            continue  # a gate reports a tag many times while it passes
        seen.add(tag.epc)
        serials.setdefault(tag.gtin, set()).add(tag.serial)

    barcodes = {
        row["gtin"]: row for row in Barcode.objects.filter(gtin__in=serials).values("gtin", "article_id", "pack_qty")
    }
    counted: dict[int, Decimal] = {}
    gtins_of: dict[int, list[str]] = {}
    for gtin, tags in sorted(serials.items()):
        row = barcodes.get(gtin)
        if row is None:
            unknown.append(
                {"gtin": gtin, "tags": len(tags), "code": "unknown_gtin", "reason": f"no article with GTIN {gtin}"}
            )
            continue
        counted[row["article_id"]] = counted.get(row["article_id"], Decimal(0)) + len(tags) * row["pack_qty"]
        gtins_of.setdefault(row["article_id"], []).append(gtin)
    skus = dict(Article.objects.filter(pk__in=counted).values_list("pk", "sku"))

    try:
        with transaction.atomic(durable=True):
            first = RfidRead.objects.filter(location=location, read_id=read_id).first()
            if first is not None:
                return first, False
            posted = (
                stock_moves_post(
                    moves=[
                        MoveSpec(
                            kind=StockMove.Kind.COUNT,
                            idempotency_key=f"rfid:{location.code}:{read_id}:{article_id}",
                            counted=quantity,
                            article_id=article_id,
                            location_id=location.pk,
                            reference=f"RFID {read_id}"[:120],
                        )
                        for article_id, quantity in sorted(counted.items())
                    ],
                    origin=origin,
                )
                if counted
                else None
            )
            changes = {r.article_id: r.quantity for r in posted.results} if posted else {}
            articles = [
                {
                    "sku": skus[article_id],
                    "gtins": gtins_of[article_id],
                    "counted": str(quantity.quantize(QTY)),
                    "difference": str(changes[article_id].quantize(QTY))
                    if changes.get(article_id) is not None
                    else None,
                }
                for article_id, quantity in sorted(counted.items(), key=lambda item: skus[item[0]])
            ]
            read = RfidRead.objects.create(
                location=location,
                read_id=read_id,
                reader=reader[:80],
                read_at=read_at,
                epc_count=len(epcs),
                decoded_count=len(seen),
                unknown_count=len(unknown),
                articles_counted=len(counted),
                result={"articles": articles, "unknown": unknown},
            )
            return read, True
    except IntegrityError:
        # The same read posted concurrently: the other one won; answer with it.
        return RfidRead.objects.get(location=location, read_id=read_id), False
