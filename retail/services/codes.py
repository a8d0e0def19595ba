"""What a scanned code stands for: an article and a quantity (GTIN and
pack barcodes), or an article plus a weight or price (in-store scale labels,
EAN-13 with prefix 20-29 read by a configured `ScaleLayout`).

Codes are resolved in batches (one query for barcodes, one for layouts when
a scale label is among them), so a sale of many lines costs the same few
statements as a scan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from posinv.exceptions import InvalidInput, NotFound, Problem
from posinv.models import Article, Barcode, Price
from posinv.services.barcodes import GTIN_LENGTHS, gtin_check_digit, gtin_normalize
from retail.models import ScaleLayout

# GS1 General Specifications 7.9.2: the weighted "products" of a digit for the
# price/weight verifier. "2-": double, and when two digits, units minus tens;
# "5+": five times, units plus tens; "5-": five times, units minus tens; all mod 10.
WEIGHT_2_MINUS = (0, 2, 4, 6, 8, 9, 1, 3, 5, 7)
WEIGHT_3 = tuple((3 * d) % 10 for d in range(10))
WEIGHT_5_PLUS = (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)
WEIGHT_5_MINUS = (0, 5, 9, 4, 8, 3, 7, 2, 6, 1)
# The digit whose 5- product is the index (7.9.4, last step for 5-digit values).
INVERSE_5_MINUS = tuple(WEIGHT_5_MINUS.index(product) for product in range(10))

GRAMS_PER_KG = Decimal(1000)
CENTS = Decimal(100)


def price_verifier_digit(value: str) -> int:
    """The GS1 price/weight verifier digit of a 4- or 5-digit value (7.9.3 and 7.9.4).

    4 digits: weights 2-, 2-, 3, 5-; the digit is the units of (sum x 3).
    5 digits: weights 5+, 2-, 5-, 5+, 2-; the digit is the one whose 5- product
    brings the sum to a multiple of ten."""
    digits = [int(char) for char in value]
    if len(digits) == 4:
        tables = (WEIGHT_2_MINUS, WEIGHT_2_MINUS, WEIGHT_3, WEIGHT_5_MINUS)
        return sum(table[d] for table, d in zip(tables, digits, strict=True)) * 3 % 10
    if len(digits) == 5:
        tables = (WEIGHT_5_PLUS, WEIGHT_2_MINUS, WEIGHT_5_MINUS, WEIGHT_5_PLUS, WEIGHT_2_MINUS)
        total = sum(table[d] for table, d in zip(tables, digits, strict=True))
        return INVERSE_5_MINUS[(10 - total % 10) % 10]
    raise ValueError(f"a verifier digit covers 4 or 5 digits, not {len(digits)}")


@dataclass(frozen=True)
class ScaleLabel:
    """A scale label taken apart: the prefix's layout, the item code, the
    value (grams or cents) and the GTIN of the article's registered scale
    barcode (the label with the value zeroed)."""

    layout: ScaleLayout
    item: str
    value: int
    article_gtin: str

    @property
    def weight_g(self) -> int | None:
        return self.value if self.layout.content == ScaleLayout.Content.WEIGHT else None

    @property
    def amount(self) -> Decimal | None:
        return Decimal(self.value) / CENTS if self.layout.content == ScaleLayout.Content.PRICE else None


def scale_label_parse(*, code: str, layout: ScaleLayout, field: str = "code") -> ScaleLabel:
    """Split a valid EAN-13 scale label by `layout`; a wrong verifier digit is InvalidInput."""
    body = code[2:12]
    item = body[: layout.item_digits]
    rest = body[layout.item_digits :]
    if layout.has_verifier:
        verifier, value = rest[0], rest[1:]
        expected = price_verifier_digit(value)
        if int(verifier) != expected:
            what = "weight" if layout.content == ScaleLayout.Content.WEIGHT else "price"
            raise InvalidInput(
                [
                    Problem(
                        field=field,
                        code="check_digit",
                        reason=f"scale label {code!r} has {what} verifier digit {verifier}, expected {expected} "
                        f"(layout {layout.pattern})",
                    )
                ]
            )
    else:
        value = rest
    zeroed = code[:2] + item + "0" * (10 - len(item))
    article_code = zeroed + str(gtin_check_digit(zeroed))
    return ScaleLabel(layout=layout, item=item, value=int(value), article_gtin=article_code.zfill(14))


@dataclass(frozen=True)
class ResolvedCode:
    """What one scanned code means: the article, the symbology, the GTIN-14,
    the units one scan stands for (pack barcodes), for scale labels the
    weight (grams) or the price (currency units) printed on the label, and
    the article's price when a price group was asked for."""

    code: str
    kind: str
    gtin: str
    article_id: int
    sku: str
    name: str
    unit: str
    category: str
    pack_qty: Decimal
    unit_price: Decimal | None
    weight_g: int | None = None
    label_amount: Decimal | None = None


def _money(value) -> Decimal | None:
    # SQLite hands back a subquery's decimal unscaled (1.99000000000000).
    return None if value is None else Decimal(value).quantize(Decimal("0.01"))


def codes_resolve(
    *,
    codes: Sequence[str],
    field: str = "code",
    fields: Sequence[str] | None = None,
    price_group_id: int | None = None,
    on: date | None = None,
) -> list[ResolvedCode]:
    """Resolve codes in order, with at most two queries for any number of them.

    `field` names the input in errors (with several codes `field[index]`), or
    `fields` names each code's input. With `price_group_id`, each code also
    carries its article's price in that group valid `on` (default today),
    read in the same query. A malformed code or a wrong check digit (or verifier) is
    InvalidInput (400); a valid code no article carries is NotFound (404),
    echoing the code. Every bad code is reported, not just the first."""

    def where(index: int) -> str:
        if fields is not None:
            return fields[index]
        return field if len(codes) == 1 else f"{field}[{index}]"

    problems: list[Problem] = []
    normalized: list[str | None] = []
    for index, raw in enumerate(codes):
        try:
            normalized.append(gtin_normalize(raw, field=where(index)))
        except InvalidInput as exc:
            problems += exc.problems
            normalized.append(None)
    if problems:
        raise InvalidInput(problems)

    scale_prefixes = {gtin[1:3] for gtin in normalized if gtin[0] == "0" and gtin[1] == "2"}
    layouts = (
        {layout.prefix: layout for layout in ScaleLayout.objects.filter(prefix__in=scale_prefixes, active=True)}
        if scale_prefixes
        else {}
    )
    labels: dict[int, ScaleLabel] = {}
    for index, gtin in enumerate(normalized):
        layout = layouts.get(gtin[1:3]) if gtin[0] == "0" else None
        if layout is not None:
            try:
                labels[index] = scale_label_parse(code=gtin[1:], layout=layout, field=where(index))
            except InvalidInput as exc:
                problems += exc.problems
    if problems:
        raise InvalidInput(problems)

    lookups = sorted({labels[i].article_gtin if i in labels else gtin for i, gtin in enumerate(normalized)})
    barcodes = _barcodes_with_prices(lookups, price_group_id=price_group_id, on=on or timezone.localdate())
    resolved: list[ResolvedCode] = []
    for index, gtin in enumerate(normalized):
        raw = codes[index].strip()
        label = labels.get(index)
        row = barcodes.get(label.article_gtin if label else gtin)
        if row is None:
            if label is not None:
                reason = (
                    f"no article with scale item {label.item} (prefix {label.layout.prefix}) for label {raw!r}; "
                    f"register the article's scale barcode {label.article_gtin.lstrip('0')}"
                )
            else:
                reason = f"no article with barcode {raw!r}"
            problems.append(Problem(field=where(index), code="not_found", reason=reason))
            continue
        if label is not None:
            kind, pack_qty = f"scale-{label.layout.content}", Decimal(1)
            scale = {"weight_g": label.weight_g, "label_amount": label.amount}
        else:
            kind, pack_qty, scale = GTIN_LENGTHS[len(raw)], row["pack_qty"], {}
            if pack_qty != 1:
                kind = f"{kind} pack"
        resolved.append(
            ResolvedCode(
                code=raw,
                kind=kind,
                gtin=gtin,
                article_id=row["article_id"],
                sku=row["article__sku"],
                name=row["article__name"],
                unit=row["article__unit"],
                category=row["article__category"],
                unit_price=_money(row["unit_price"]),
                pack_qty=pack_qty,
                **scale,
            )
        )
    if problems:
        raise NotFound(problems)
    return resolved


def _barcodes_with_prices(gtins: Sequence[str], *, price_group_id: int | None, on: date) -> dict[str, dict]:
    """The barcode rows of `gtins` with their article and, with a price group,
    the article's price valid `on`: one query, in plain SQL because a till
    scans and sells through it on every request (posinv/db.py)."""
    quote = connection.ops.quote_name
    barcode, article, price = (quote(m._meta.db_table) for m in (Barcode, Article, Price))
    if price_group_id is None:
        price_sql, params = "NULL", []
    else:
        price_sql = (
            f"(SELECT p.amount FROM {price} p WHERE p.article_id = b.article_id AND p.group_id = %s"
            " AND p.valid_from <= %s ORDER BY p.valid_from DESC LIMIT 1)"
        )
        params = [price_group_id, on]
    sql = (
        f"SELECT b.gtin, b.article_id, a.sku, a.name, a.unit, a.category, b.pack_qty, {price_sql}"
        f" FROM {barcode} b JOIN {article} a ON a.id = b.article_id"
        f" WHERE b.gtin IN ({', '.join(['%s'] * len(gtins))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + list(gtins))
        rows = cursor.fetchall()
    keys = ("gtin", "article_id", "article__sku", "article__name", "article__unit", "article__category")
    found = {}
    for row in rows:
        item = dict(zip(keys, row[:6], strict=True))
        # SQLite hands decimals back as numbers: make them the Decimals PostgreSQL gives.
        item["pack_qty"] = Decimal(str(row[6])).quantize(Decimal("0.001"))
        item["unit_price"] = row[7]
        found[item["gtin"]] = item
    return found
