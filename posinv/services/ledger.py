"""The stock ledger: the only code that changes `StockLevel.on_hand`.

`stock_moves_post` takes a batch of moves and, in one transaction: resolves
articles and locations, locks the affected levels in pk order, drops
replays by idempotency key, turns counts (absolute quantities) into
differences, enforces each location's negative-stock policy, inserts the
moves, updates the levels with one delta UPDATE, and writes one outbox row
per changed pair. A refused batch writes nothing. See docs/ledger.md."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from posinv.bounds import QUANTITY_MAX, QUANTITY_RANGE_TEXT, quantity_problem
from posinv.exceptions import LedgerRefused, Problem
from posinv.models import Article, Location, Origin, StockChange, StockLevel, StockMove
from posinv.services import locks

logger = logging.getLogger(__name__)

# The one quantity bound (posinv/bounds.py), for each move and for each level.
MAX_ABS_QUANTITY = QUANTITY_MAX
QUANTUM = Decimal("0.001")
KINDS = set(StockMove.Kind.values)
# Kinds whose sign is fixed; the others may go either way.
POSITIVE_KINDS = {StockMove.Kind.RETURN, StockMove.Kind.RECEIPT}
NEGATIVE_KINDS = {StockMove.Kind.SALE}


@dataclass(frozen=True)
class StockOrigin:
    """Who causes the moves: a register, cabinet, store, user or the system,
    with the code that names it (register code, username, ...)."""

    kind: str
    code: str = ""


@dataclass(frozen=True)
class MoveSpec:
    """One requested move. Give the article by `sku` or `article_id` and the
    location by `location_code` or `location_id`. A count gives `counted`
    (the absolute quantity found) instead of `quantity`."""

    kind: str
    idempotency_key: str
    quantity: Decimal | None = None
    counted: Decimal | None = None
    sku: str | None = None
    article_id: int | None = None
    location_code: str | None = None
    location_id: int | None = None
    reference: str = ""
    reason: str = ""


@dataclass
class MoveResult:
    """What happened to one requested move: `posted`, `duplicate` (its key was
    posted before; the first result is returned) or `refused` (see problem)."""

    index: int
    idempotency_key: str
    status: str
    move_id: int | None = None
    article_id: int | None = None
    location_id: int | None = None
    quantity: Decimal | None = None
    balance_after: Decimal | None = None
    problem: Problem | None = None


@dataclass
class PostResult:
    results: list[MoveResult] = field(default_factory=list)

    def _with(self, status: str) -> list[MoveResult]:
        return [r for r in self.results if r.status == status]

    @property
    def posted(self) -> list[MoveResult]:
        return self._with("posted")

    @property
    def duplicates(self) -> list[MoveResult]:
        return self._with("duplicate")

    @property
    def refused(self) -> list[MoveResult]:
        return self._with("refused")


@dataclass
class _Pending:
    index: int
    spec: MoveSpec
    article_id: int | None = None
    location_id: int | None = None
    quantity: Decimal | None = None
    counted: Decimal | None = None


def stock_moves_post(*, moves: Sequence[MoveSpec], origin: StockOrigin, partial_ok: bool = False) -> PostResult:
    """Post a batch of moves atomically and idempotently.

    With `partial_ok=False` (the default) any refused move raises
    LedgerRefused listing every problem, and nothing is written. With
    `partial_ok=True` refused moves are reported in the result and the rest
    are posted. Replayed keys are reported as duplicates with the first
    result. Composes with a caller's transaction (runs in a savepoint)."""
    if origin.kind not in Origin.values:
        raise LedgerRefused([Problem(field="origin", reason=f"unknown origin {origin.kind!r}")])
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _post(moves, origin, partial_ok)
        except IntegrityError:
            # A concurrent batch inserted one of our keys between our check
            # and our insert (only possible for keys on different pairs,
            # which our row locks do not serialize): the retry sees it as a
            # duplicate.
            if attempt == 2:
                raise
            logger.info("ledger batch raced on an idempotency key; retrying")
        except OperationalError as exc:
            # Locks are ordered, so a deadlock needs a caller holding other
            # locks in its own transaction; PostgreSQL then aborts one side,
            # which may simply try again.
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "40P01":
                raise
            logger.info("ledger batch was a deadlock victim; retrying")
    raise AssertionError("unreachable")


def _post(moves: Sequence[MoveSpec], origin: StockOrigin, partial_ok: bool) -> PostResult:
    results: dict[int, MoveResult] = {}
    pending = _validate(moves, results)
    pending, refusing = _resolve(pending, results)
    pending = _drop_batch_duplicates(pending, results)

    pairs = {(p.article_id, p.location_id) for p in pending}
    levels = locks.stock_levels_lock(pairs=pairs)
    pending = _drop_replays(pending, results)

    balances = {pair: level.on_hand for pair, level in levels.items()}
    to_write: list[tuple[_Pending, Decimal, Decimal]] = []
    for item in pending:
        pair = (item.article_id, item.location_id)
        before = balances[pair]
        delta = item.counted - before if item.counted is not None else item.quantity
        after = before + delta
        if delta < 0 and after < 0 and item.location_id in refusing:
            results[item.index] = _refused(
                item,
                Problem(
                    index=item.index,
                    field="quantity",
                    code="negative_stock",
                    reason=f"would leave {_shown(after)} on hand (now {_shown(before)}); "
                    "this location refuses negative stock",
                ),
            )
            continue
        if abs(after) > QUANTITY_MAX and abs(after) > abs(before):
            # A level is a sum of moves: bounding each move is not enough.
            # A move that brings a level poisoned before the bound existed
            # back towards it is still welcome.
            results[item.index] = _refused(
                item,
                Problem(
                    index=item.index,
                    field="counted" if item.counted is not None else "quantity",
                    code="out_of_bounds",
                    reason=f"would take on hand to {_shown(after)} (now {_shown(before)}); a level must stay "
                    f"{QUANTITY_RANGE_TEXT} (the system's quantity bound)",
                ),
            )
            continue
        balances[pair] = after
        to_write.append((item, delta, after))

    _resolve_batch_duplicates(results)  # copies of refused or replayed items
    refused = [r for r in results.values() if r.status == "refused"]
    if refused and not partial_ok:
        raise LedgerRefused([r.problem for r in sorted(refused, key=lambda r: r.index)])

    if to_write:
        _write(to_write, levels, origin, results)
    _resolve_batch_duplicates(results)  # copies of items posted just now
    return PostResult(results=[results[i] for i in sorted(results)])


def _validate(moves: Sequence[MoveSpec], results: dict[int, MoveResult]) -> list[_Pending]:
    pending = []
    for index, spec in enumerate(moves):
        problem = _problem_of(index, spec)
        if problem:
            results[index] = MoveResult(
                index=index, idempotency_key=spec.idempotency_key, status="refused", problem=problem
            )
            continue
        item = _Pending(index=index, spec=spec)
        if spec.kind == StockMove.Kind.COUNT:
            item.counted = _decimal(spec.counted)
        else:
            item.quantity = _decimal(spec.quantity)
        pending.append(item)
    return pending


def _shown(value: Decimal) -> str:
    """A quantity as a person writes it: 2, -1.5 (not 2.000, -1.500)."""
    return f"{value.normalize():f}" if value else "0"


def _decimal(value) -> Decimal:
    return Decimal(str(value)) if not isinstance(value, Decimal) else value


def _problem_of(index: int, spec: MoveSpec) -> Problem | None:
    def bad(field_name: str, reason: str, code: str = "invalid") -> Problem:
        return Problem(index=index, field=field_name, reason=reason, code=code)

    if spec.kind not in KINDS:
        return bad("kind", f"unknown kind {spec.kind!r}; expected one of {', '.join(sorted(KINDS))}")
    if not spec.idempotency_key or len(spec.idempotency_key) > 200:
        return bad("idempotency_key", "required, at most 200 characters")
    if spec.sku is None and spec.article_id is None:
        return bad("sku", "an article (sku or article_id) is required")
    if spec.location_code is None and spec.location_id is None:
        return bad("location", "a location (code or id) is required")
    is_count = spec.kind == StockMove.Kind.COUNT
    name = "counted" if is_count else "quantity"
    raw = spec.counted if is_count else spec.quantity
    other = spec.quantity if is_count else spec.counted
    if other is not None:
        return bad(
            "quantity" if is_count else "counted",
            "a count gives `counted` only" if is_count else "only a count gives `counted`",
        )
    try:
        value = _decimal(raw)
    except (InvalidOperation, ValueError, TypeError):
        return bad(name, f"{raw!r} is not a number")
    if not value.is_finite():
        return bad(name, "must be a finite number")
    beyond = quantity_problem(value)
    if beyond:
        return bad(name, beyond, code="out_of_bounds")
    if value != value.quantize(QUANTUM, rounding="ROUND_DOWN"):
        return bad(name, "at most 3 decimal places")
    if is_count:
        if value < 0:
            return bad(name, "a counted quantity cannot be negative")
        return None
    if value == 0:
        return bad(name, "must not be zero")
    if spec.kind in POSITIVE_KINDS and value < 0:
        return bad(name, f"a {spec.kind} adds stock: the quantity must be positive")
    if spec.kind in NEGATIVE_KINDS and value > 0:
        return bad(name, f"a {spec.kind} takes stock: the quantity must be negative")
    return None


def _resolve(pending: list[_Pending], results: dict[int, MoveResult]) -> tuple[list[_Pending], set[int]]:
    """Article and location ids for every pending move (two queries at most
    each), and the ids of the locations that refuse negative stock."""
    skus = {p.spec.sku for p in pending if p.spec.article_id is None}
    article_ids = {p.spec.article_id for p in pending if p.spec.article_id is not None}
    by_sku = dict(_rows_where_in(Article, "sku", skus, ("sku", "id")))
    known_articles = {pk for (pk,) in _rows_where_in(Article, "id", article_ids, ("id",))}
    codes = {p.spec.location_code for p in pending if p.spec.location_id is None}
    location_ids = {p.spec.location_id for p in pending if p.spec.location_id is not None}
    policy: dict[int, str] = {}
    by_code = {}
    for code, pk, negative in _rows_where_in(Location, "code", codes, ("code", "id", "negative_stock")):
        by_code[code], policy[pk] = pk, negative
    for pk, negative in _rows_where_in(Location, "id", location_ids, ("id", "negative_stock")):
        policy[pk] = negative
    known_locations = set(policy)
    refusing = {pk for pk, negative in policy.items() if negative == Location.NegativeStock.REFUSE}
    kept = []
    for item in pending:
        spec = item.spec
        item.article_id = spec.article_id if spec.article_id in known_articles else by_sku.get(spec.sku)
        item.location_id = spec.location_id if spec.location_id in known_locations else by_code.get(spec.location_code)
        if item.article_id is None:
            what = f"sku {spec.sku!r}" if spec.article_id is None else f"article id {spec.article_id}"
            results[item.index] = _refused(
                item, Problem(index=item.index, field="sku", code="unknown_article", reason=f"unknown {what}")
            )
        elif item.location_id is None:
            what = f"code {spec.location_code!r}" if spec.location_id is None else f"id {spec.location_id}"
            results[item.index] = _refused(
                item,
                Problem(index=item.index, field="location", code="unknown_location", reason=f"unknown location {what}"),
            )
        else:
            kept.append(item)
    return kept, refusing


def _rows_where_in(model, column: str, values, columns: tuple[str, ...]) -> list[tuple]:
    """`SELECT columns FROM model WHERE column IN values`. On PostgreSQL the
    values travel as one array parameter (`= ANY(%s)`): a batch of 500 keys
    is one parameter, not 500 placeholders for the driver to parse."""
    values = list(values)
    if not values:
        return []
    if connection.vendor != "postgresql":
        return list(model.objects.filter(**{f"{column}__in": values}).values_list(*columns))
    array_type = "bigint[]" if column == "id" else "text[]"
    sql = f'SELECT {", ".join(columns)} FROM "{model._meta.db_table}" WHERE "{column}" = ANY(%s::{array_type})'
    with connection.cursor() as cursor:
        cursor.execute(sql, [values])
        return cursor.fetchall()


def _signature(article_id, location_id, kind, quantity, counted) -> tuple:
    norm = lambda v: None if v is None else _decimal(v).quantize(QUANTUM)  # noqa: E731
    return (article_id, location_id, kind, norm(quantity), norm(counted))


def _item_signature(item: _Pending) -> tuple:
    return _signature(item.article_id, item.location_id, item.spec.kind, item.quantity, item.counted)


def _drop_batch_duplicates(pending: list[_Pending], results: dict[int, MoveResult]) -> list[_Pending]:
    """The same key twice in one batch: identical content is a duplicate of the
    first occurrence; different content is refused as a conflict."""
    first: dict[str, _Pending] = {}
    kept = []
    for item in pending:
        key = item.spec.idempotency_key
        earlier = first.get(key)
        if earlier is None:
            first[key] = item
            kept.append(item)
        elif _item_signature(earlier) == _item_signature(item):
            results[item.index] = MoveResult(
                index=item.index, idempotency_key=key, status="duplicate_of", move_id=earlier.index
            )
        else:
            results[item.index] = _refused(
                item,
                Problem(
                    index=item.index,
                    field="idempotency_key",
                    code="conflict",
                    reason=f"key {key!r} is used by item {earlier.index} with different content",
                ),
            )
    return kept


def _drop_replays(pending: list[_Pending], results: dict[int, MoveResult]) -> list[_Pending]:
    """Keys posted before (checked under the level locks): a replay with the
    same content returns the first result; different content is a conflict."""
    keys = [p.spec.idempotency_key for p in pending]
    if not keys:
        return pending
    columns = ("id", "idempotency_key", "article_id", "location_id", "kind", "quantity", "counted", "balance_after")
    existing = {
        row[1]: dict(zip(("pk", *columns[1:]), row, strict=True))
        for row in _rows_where_in(StockMove, "idempotency_key", keys, columns)
    }
    kept = []
    for item in pending:
        old = existing.get(item.spec.idempotency_key)
        if old is None:
            kept.append(item)
            continue
        old_quantity = None if old["kind"] == StockMove.Kind.COUNT else old["quantity"]
        old_signature = _signature(old["article_id"], old["location_id"], old["kind"], old_quantity, old["counted"])
        if old_signature == _item_signature(item):
            results[item.index] = MoveResult(
                index=item.index,
                idempotency_key=item.spec.idempotency_key,
                status="duplicate",
                move_id=old["pk"],
                article_id=old["article_id"],
                location_id=old["location_id"],
                quantity=old["quantity"],
                balance_after=old["balance_after"],
            )
        else:
            results[item.index] = _refused(
                item,
                Problem(
                    index=item.index,
                    field="idempotency_key",
                    code="conflict",
                    reason=f"key {item.spec.idempotency_key!r} was posted before with different content",
                ),
            )
    return kept


def _refused(item: _Pending, problem: Problem) -> MoveResult:
    return MoveResult(
        index=item.index,
        idempotency_key=item.spec.idempotency_key,
        status="refused",
        article_id=item.article_id,
        location_id=item.location_id,
        problem=problem,
    )


def _write(
    to_write: list[tuple[_Pending, Decimal, Decimal]],
    levels: dict[tuple[int, int], StockLevel],
    origin: StockOrigin,
    results: dict[int, MoveResult],
) -> None:
    now = timezone.now()
    deltas: dict[tuple[int, int], Decimal] = {}
    final: dict[tuple[int, int], Decimal] = {}
    for item, delta, after in to_write:
        pair = (item.article_id, item.location_id)
        deltas[pair] = deltas.get(pair, Decimal(0)) + delta
        final[pair] = after
    changed = [pair for pair, d in deltas.items() if d != 0]
    level_deltas = {levels[pair].pk: deltas[pair] for pair in changed}
    outbox = {pair: final[pair] for pair in changed}
    if connection.vendor == "postgresql":
        move_ids = _write_pg(to_write, level_deltas, outbox, origin, now)
    else:
        move_ids = _insert_moves_orm(to_write, origin, now)
        if changed:
            _levels_add(level_deltas, now)
            _outbox_write(outbox, origin, now)
    for (item, delta, after), move_id in zip(to_write, move_ids, strict=True):
        results[item.index] = MoveResult(
            index=item.index,
            idempotency_key=item.spec.idempotency_key,
            status="posted",
            move_id=move_id,
            article_id=item.article_id,
            location_id=item.location_id,
            quantity=delta,
            balance_after=after,
        )
    if changed:
        from posinv.services.changes import changes_wake

        # A plain function: Django's robust on_commit logs a failure with func.__qualname__,
        # which a functools.partial lacks, so a Redis outage turned into a 500 after commit.
        transaction.on_commit(changes_wake, robust=True)


def _write_pg(to_write, level_deltas: dict[int, Decimal], outbox, origin: StockOrigin, now) -> list[int]:
    """PostgreSQL: the moves, the level deltas and the outbox rows in ONE
    statement (data-modifying CTEs), each part fed by arrays."""
    moves_sql, params = _insert_moves_pg_sql(to_write, origin, now)
    parts = [f"m AS ({moves_sql})"]
    if level_deltas:
        items = sorted(level_deltas.items())
        pairs = list(outbox)
        parts.append(
            f'u AS (UPDATE "{StockLevel._meta.db_table}" AS s SET on_hand = s.on_hand + v.delta, updated_at = %s '
            "FROM unnest(%s::bigint[], %s::numeric[]) AS v(id, delta) WHERE s.id = v.id RETURNING 1)"
        )
        params += [now, [pk for pk, _ in items], [delta for _, delta in items]]
        parts.append(
            f'o AS (INSERT INTO "{StockChange._meta.db_table}" '
            "(article_id, location_id, on_hand, origin, origin_code, created_at) "
            "SELECT t.a, t.l, t.h, %s, %s, %s FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[]) AS t(a, l, h) "
            "RETURNING 1)"
        )
        params += [
            origin.kind,
            origin.code[:120],
            now,
            [a for a, _ in pairs],
            [loc for _, loc in pairs],
            [outbox[pair] for pair in pairs],
        ]
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT id, idempotency_key FROM m", params)
        ids = dict((key, pk) for pk, key in cursor.fetchall())
    return [ids[item.spec.idempotency_key] for item, _, _ in to_write]


def _insert_moves_pg_sql(to_write, origin: StockOrigin, now) -> tuple[str, list]:
    """All moves in one INSERT ... SELECT FROM unnest(arrays): one parameter
    per column instead of one per value, and a plain value for a column that
    is the same on every move (kind, counted, reference, reason usually are).
    Returns the statement (RETURNING id and key) and its parameters."""
    names = (
        "article_id",
        "location_id",
        "kind",
        "quantity",
        "counted",
        "balance_after",
        "idempotency_key",
        "reference",
        "reason",
    )
    types = ("bigint", "bigint", "text", "numeric", "numeric", "numeric", "text", "text", "text")
    columns: tuple[list, ...] = tuple([] for _ in names)
    for item, delta, after in to_write:
        spec = item.spec
        values = (
            item.article_id,
            item.location_id,
            spec.kind,
            delta,
            item.counted,
            after,
            spec.idempotency_key,
            spec.reference[:120],
            spec.reason[:200],
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    select, arrays, array_params, scalar_params = [], [], [], []
    for name, sql_type, values in zip(names, types, columns, strict=True):
        if name in ("kind", "counted", "reference", "reason") and all(v == values[0] for v in values):
            select.append(f"%s::{sql_type}")
            scalar_params.append(values[0])
        else:
            select.append(f"t.{name}")
            arrays.append((name, sql_type))
            array_params.append(values)
    sql = (
        f'INSERT INTO "{StockMove._meta.db_table}" ({", ".join(names)}, origin, origin_code, created_at) '
        f"SELECT {', '.join(select)}, %s, %s, %s "
        f"FROM unnest({', '.join(f'%s::{t}[]' for _, t in arrays)}) WITH ORDINALITY "
        f"AS t({', '.join(n for n, _ in arrays)}, n) ORDER BY t.n RETURNING id, idempotency_key"
    )
    return sql, [*scalar_params, origin.kind, origin.code[:120], now, *array_params]


def _insert_moves_orm(to_write, origin: StockOrigin, now) -> list[int]:
    """SQLite: multi-row INSERT ... RETURNING through the cursor (building
    and compiling hundreds of model instances costs more than the insert)."""
    ops = connection.ops
    created = ops.adapt_datetimefield_value(now)
    columns = (
        "article_id, location_id, kind, quantity, counted, balance_after, idempotency_key, "
        "origin, origin_code, reference, reason, created_at"
    )
    per_statement = max(1, (connection.features.max_query_params or 999) // 12)
    ids: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(to_write), per_statement):
            part = to_write[start : start + per_statement]
            params: list = []
            for item, delta, after in part:
                spec = item.spec
                params += [
                    item.article_id,
                    item.location_id,
                    spec.kind,
                    ops.adapt_decimalfield_value(delta, 14, 3),
                    None if item.counted is None else ops.adapt_decimalfield_value(item.counted, 14, 3),
                    ops.adapt_decimalfield_value(after, 14, 3),
                    spec.idempotency_key,
                    origin.kind,
                    origin.code[:120],
                    spec.reference[:120],
                    spec.reason[:200],
                    created,
                ]
            values = ", ".join(["(" + ", ".join(["%s"] * 12) + ")"] * len(part))
            cursor.execute(
                f'INSERT INTO "{StockMove._meta.db_table}" ({columns}) VALUES {values} RETURNING id, idempotency_key',
                params,
            )
            ids.update((key, pk) for pk, key in cursor.fetchall())
    return [ids[item.spec.idempotency_key] for item, _, _ in to_write]


def _outbox_write(on_hand: dict[tuple[int, int], Decimal], origin: StockOrigin, now) -> None:
    """SQLite: one outbox row per changed pair, in the moves' transaction
    (PostgreSQL writes them inside _write_pg)."""
    ops = connection.ops
    created = ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.executemany(
            f'INSERT INTO "{StockChange._meta.db_table}" '
            "(article_id, location_id, on_hand, origin, origin_code, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (a, loc, ops.adapt_decimalfield_value(value, 14, 3), origin.kind, origin.code[:120], created)
                for (a, loc), value in on_hand.items()
            ],
        )


def _resolve_batch_duplicates(results: dict[int, MoveResult]) -> None:
    """A key repeated within one batch gets the outcome of its first
    occurrence: refused with the same reason, or a duplicate of what the
    first one posted (or of the earlier post it replayed). Called before the
    write (the first may be refused or a replay) and after it (posted)."""
    for index, result in list(results.items()):
        if result.status != "duplicate_of":
            continue
        first = results.get(result.move_id)
        if first is None:
            continue  # posted by this batch: resolved after the write
        if first.status == "refused":
            problem = first.problem
            results[index] = MoveResult(
                index=index,
                idempotency_key=result.idempotency_key,
                status="refused",
                article_id=first.article_id,
                location_id=first.location_id,
                problem=Problem(
                    index=index,
                    field=problem.field,
                    code=problem.code,
                    reason=f"{problem.reason} (same key as item {first.index})",
                ),
            )
        else:
            results[index] = MoveResult(
                index=index,
                idempotency_key=result.idempotency_key,
                status="duplicate",
                move_id=first.move_id,
                article_id=first.article_id,
                location_id=first.location_id,
                quantity=first.quantity,
                balance_after=first.balance_after,
            )


def _levels_add(deltas_by_level: dict[int, Decimal], now) -> None:
    """SQLite: one UPDATE for all levels, on_hand = on_hand + delta (atomic
    in SQL, so even a writer that skipped the lock could not lose an update;
    PostgreSQL does the same inside _write_pg)."""
    table = StockLevel._meta.db_table
    items = sorted(deltas_by_level.items())
    params: list = []
    values = ", ".join(["(%s, %s)"] * len(items))
    for pk, delta in items:
        params += [pk, str(delta)]
    sql = (
        f'UPDATE "{table}" SET "on_hand" = ROUND("on_hand" + v.column2, 3), "updated_at" = %s '
        f'FROM (VALUES {values}) AS v WHERE "{table}"."id" = v.column1'
    )
    params = [now, *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def stock_transfer(
    *,
    article_id: int,
    from_location_id: int,
    to_location_id: int,
    quantity: Decimal,
    idempotency_key: str,
    origin: StockOrigin,
    reference: str = "",
) -> PostResult:
    """Move `quantity` from one location to another: two transfer moves in one batch."""
    if from_location_id == to_location_id:
        raise LedgerRefused([Problem(field="to_location", reason="source and destination are the same")])
    quantity = _decimal(quantity)
    if quantity <= 0:
        raise LedgerRefused([Problem(field="quantity", reason="a transfer quantity must be positive")])
    return stock_moves_post(
        moves=[
            MoveSpec(
                kind=StockMove.Kind.TRANSFER,
                idempotency_key=f"{idempotency_key}:out",
                quantity=-quantity,
                article_id=article_id,
                location_id=from_location_id,
                reference=reference,
            ),
            MoveSpec(
                kind=StockMove.Kind.TRANSFER,
                idempotency_key=f"{idempotency_key}:in",
                quantity=quantity,
                article_id=article_id,
                location_id=to_location_id,
                reference=reference,
            ),
        ],
        origin=origin,
    )
