"""External stores and wholesalers as superior or inferior warehouses
(seed 004, docs/stores.md): per store, stock and prices each have a
direction. Download (superior store, wholesaler): pull absolute quantities
and post the differences as counts into the target warehouse, pull prices
into the target price group (keeping history). Send (inferior store): push
the source warehouses' available-to-sell (the store's locations, summed) on
every run and, in between, through the web stack; push the group's prices."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from carts.connectors.base import BadRow, PriceUpdate, connector_class
from carts.models import ExternalStore, ProductLink
from carts.services.qoh import SendResult, qoh_send
from carts.services.stack import stack_entries_add
from carts.services.stores import store_connector
from posinv.bounds import amount_problem, amount_within, quantity_problem, quantity_within
from posinv.exceptions import InvalidInput, Problem
from posinv.models import Location, Price, StockLevel, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

D = ExternalStore.Direction
CHUNK = 1000


def store_directions_validate(*, store: ExternalStore) -> None:
    """The rules of seed 004, with the field and the reason: a wholesaler is
    never a destination; a store is not both superior and inferior for
    stock; a warehouse (and a price group) is fed by at most one superior
    source; each direction names what it needs."""
    problems: list[Problem] = []
    cls = connector_class(store.platform)
    wholesaler = store.kind == ExternalStore.Kind.WHOLESALER or cls.is_wholesaler_feed
    if wholesaler:
        if store.stock_direction == D.SEND:
            problems.append(Problem(field="stock_direction", reason="a wholesaler can only be downloaded from"))
        if store.price_direction == D.SEND:
            problems.append(Problem(field="price_direction", reason="a wholesaler can only be downloaded from"))
        if store.sync_inventory:
            problems.append(Problem(field="sync_inventory", reason="a wholesaler never receives our stock"))
    if store.stock_direction == D.DOWNLOAD:
        if store.stock_target_id is None:
            problems.append(Problem(field="stock_target", reason="downloading stock needs a target warehouse"))
        elif store.stock_target.kind != Location.Kind.WAREHOUSE:
            problems.append(Problem(field="stock_target", reason=f"{store.stock_target.code} is not a warehouse"))
        if store.sync_inventory:
            problems.append(Problem(field="sync_inventory",
                                    reason="a store is not both superior and inferior for stock"))
        if not cls.supports_get_qoh:
            problems.append(Problem(field="stock_direction", reason=f"{cls.label} cannot report quantities"))
        if store.stock_target_id:
            rival = (ExternalStore.objects.filter(stock_direction=D.DOWNLOAD, stock_target_id=store.stock_target_id)
                     .exclude(pk=store.pk).values_list("code", flat=True).first())
            if rival:
                problems.append(Problem(field="stock_target",
                                        reason=f"warehouse {store.stock_target.code} is already fed by {rival}"))
    if store.stock_direction == D.SEND and not cls.supports_inventory_sync:
        problems.append(Problem(field="stock_direction", reason=f"{cls.label} does not take quantities"))
    if store.price_direction != D.NONE:
        if store.price_group_id is None:
            problems.append(Problem(field="price_group", reason="price synchronization needs a price group"))
        if not cls.supports_prices:
            problems.append(Problem(field="price_direction", reason=f"{cls.label} has no prices"))
    if store.price_direction == D.DOWNLOAD and store.price_group_id:
        rival = (ExternalStore.objects.filter(price_direction=D.DOWNLOAD, price_group_id=store.price_group_id)
                 .exclude(pk=store.pk).values_list("code", flat=True).first())
        if rival:
            problems.append(Problem(field="price_group", reason=f"this price group is already fed by {rival}"))
    if store.direct_source_id:
        source = store.direct_source
        if source.pk == store.pk or source.direct_source_id:
            problems.append(Problem(field="direct_source", reason="the source must be another store's own warehouse"))
        elif not connector_class(source.platform).supports_get_qoh:
            problems.append(Problem(field="direct_source", reason=f"{source.code} cannot report quantities"))
    if problems:
        raise InvalidInput(problems)


@dataclass
class StockRun:
    read: int = 0
    counted: int = 0
    unchanged: int = 0
    unlinked: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    sent: SendResult | None = None
    direct_queued: int = 0


def store_stock_run(*, store: ExternalStore, confirm: bool = False) -> StockRun:
    """One stock run in the store's direction."""
    store_directions_validate(store=store)
    if store.stock_direction == D.DOWNLOAD:
        return _stock_download(store, confirm)
    if store.stock_direction == D.SEND:
        run = StockRun(sent=qoh_send(store=store))
        ExternalStore.objects.filter(pk=store.pk).update(last_stock_run_at=timezone.now())
        return run
    if store.direct_channels.exists():
        return store_direct_fetch(store=store, confirm=confirm)
    raise InvalidInput([Problem(field="stock_direction", reason=f"{store.code} does not synchronize stock")])


def bounded_products(connector) -> tuple[list, list[BadRow]]:
    """The store's products whose figures are within the system's bound
    (posinv/bounds.py), and one bad row for each other (numbered in the
    order listed): a store's figure beyond it could be neither counted nor
    stored, and must not stop the good rows."""
    kept, beyond = [], []
    for number, product in enumerate(connector.list_products(), start=1):
        problem = None
        if product.quantity is not None and not quantity_within(product.quantity):
            problem = f"quantity {product.quantity} {quantity_problem(product.quantity)}"
        elif product.price is not None and not amount_within(product.price):
            problem = f"price {product.price} {amount_problem(product.price)}"
        if problem:
            beyond.append(BadRow(number, f"product {product.ref}: {problem}"))
        else:
            kept.append(product)
    return kept, beyond


def _stock_download(store: ExternalStore, confirm: bool) -> StockRun:
    """Absolute quantities in, posted as counts where they differ. Nothing
    is posted when the store cannot be read (the error propagates), and a
    run that would zero most products is held unless confirmed."""
    connector = store_connector(store=store)
    products, beyond = bounded_products(connector)
    remote = {p.ref: p for p in products}
    run = StockRun(read=len(remote), bad_rows=list(connector.bad_rows) + beyond)
    links = dict(ProductLink.objects.filter(store=store).values_list("remote_ref", "article_id"))
    if store.stock_direction != D.DOWNLOAD:
        run.direct_queued = _record_fetched(store, remote, links, confirm=confirm)
        # Only feeding direct channels: nothing goes into our ledger.
        ExternalStore.objects.filter(pk=store.pk).update(last_stock_run_at=timezone.now())
        return run
    run.unlinked = sum(1 for ref in remote if ref not in links)
    target = store.stock_target
    # The whole target warehouse in one plain query: an IN list of 50,000
    # article ids costs more to build than the rows it saves.
    levels = dict(StockLevel.objects.filter(location=target).values_list("article_id", "on_hand"))
    changes, zeroed, known = [], 0, 0
    for ref, article_id in links.items():
        product = remote.get(ref)
        if product is None or product.quantity is None:
            continue
        known += 1
        ours = levels.get(article_id, Decimal(0))
        if Decimal(product.quantity) == ours:
            run.unchanged += 1
            continue
        if product.quantity == 0 and ours > 0:
            zeroed += 1
        changes.append((article_id, Decimal(product.quantity)))
    if not confirm and known >= 4 and zeroed > known * store.zero_hold_share:
        raise InvalidInput([Problem(
            field="confirm", code="implausible",
            reason=f"{zeroed} of {known} products would drop to zero (more than {store.zero_hold_share:.0%}); "
                   "check the feed and confirm")])
    run.direct_queued = _record_fetched(store, remote, links, confirm=True)  # held above already
    token = uuid.uuid4().hex[:12]
    for start in range(0, len(changes), CHUNK):
        stock_moves_post(moves=[
            MoveSpec(kind=StockMove.Kind.COUNT, idempotency_key=f"pull:{store.code}:{token}:{article_id}",
                     counted=quantity, article_id=article_id, location_id=target.pk,
                     reference=f"stock from {store.code}")
            for article_id, quantity in changes[start:start + CHUNK]
        ], origin=StockOrigin("store", store.code))
    run.counted = len(changes)
    ExternalStore.objects.filter(pk=store.pk).update(last_stock_run_at=timezone.now())
    return run


def _record_fetched(store: ExternalStore, remote: dict, links: dict[str, int], *, confirm: bool) -> int:
    """Keep each product's fetched figure on its link (the direct scenario
    reads it) and queue the changed ones for the direct channels. Only when
    the store feeds a direct channel: nobody else reads these figures."""
    channels = list(ExternalStore.objects.filter(direct_source=store, active=True))
    if not channels:
        return 0
    rows = list(ProductLink.objects.filter(store=store).only("pk", "remote_ref", "remote_quantity"))
    changed_rows = []
    for row in rows:
        product = remote.get(row.remote_ref)
        if product is not None and product.quantity is not None and product.quantity != row.remote_quantity:
            row.remote_quantity = product.quantity
            changed_rows.append(row)
    changed = {row.remote_ref for row in changed_rows}
    if not changed:
        return 0
    known = [row for row in rows if row.remote_ref in remote and remote[row.remote_ref].quantity is not None]
    zeroed = sum(1 for row in changed_rows if row.remote_quantity == 0)
    if not confirm and len(known) >= 4 and zeroed > len(known) * store.zero_hold_share:
        # The same guard as for the ledger: a broken feed must not empty the channels.
        raise InvalidInput([Problem(
            field="confirm", code="implausible",
            reason=f"{zeroed} of {len(known)} products would drop to zero (more than {store.zero_hold_share:.0%}); "
                   "check the feed and confirm")])
    with transaction.atomic():
        ProductLink.objects.bulk_update(changed_rows, ["remote_quantity"], batch_size=1000)
        queued = 0
        for channel in channels:
            queued += stack_entries_add(store=channel, article_ids=[links[ref] for ref in changed],
                                        origin=("store", store.code))
    return queued


def store_direct_fetch(*, store: ExternalStore, confirm: bool = False) -> StockRun:
    """Fetch an external warehouse's figures for its direct channels only (no ledger moves)."""
    return _stock_download(store, confirm)


@dataclass
class PriceRun:
    read: int = 0
    changed: int = 0
    unchanged: int = 0
    sent: int = 0
    errors: list[str] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)


def current_prices(*, group_id: int, article_ids, on=None) -> dict[int, Decimal]:
    """The price in force per article: the newest row valid on `on` (today)."""
    on = on or timezone.localdate()
    found: dict[int, Decimal] = {}
    for article_id, amount in (Price.objects.filter(group_id=group_id, article_id__in=list(article_ids),
                                                    valid_from__lte=on)
                               .order_by("article_id", "-valid_from").values_list("article_id", "amount")):
        found.setdefault(article_id, amount)
    return found


def store_price_run(*, store: ExternalStore) -> PriceRun:
    """One price run in the store's direction."""
    store_directions_validate(store=store)
    links = dict(ProductLink.objects.filter(store=store).values_list("remote_ref", "article_id"))
    connector = store_connector(store=store)
    run = PriceRun()
    today = timezone.localdate()
    current = current_prices(group_id=store.price_group_id, article_ids=links.values())
    if store.price_direction == D.DOWNLOAD:
        products, beyond = bounded_products(connector)
        remote = {p.ref: p.price for p in products if p.price is not None}
        run.read, run.bad_rows = len(remote), list(connector.bad_rows) + beyond
        with transaction.atomic():
            for ref, article_id in links.items():
                price = remote.get(ref)
                if price is None:
                    continue
                if current.get(article_id) == price:
                    run.unchanged += 1
                    continue
                # A new row from today keeps the older ones as history.
                Price.objects.update_or_create(article_id=article_id, group_id=store.price_group_id,
                                               valid_from=today, defaults={"amount": price,
                                                                           "currency": store.price_group.currency})
                run.changed += 1
    elif store.price_direction == D.SEND:
        updates = [PriceUpdate(ref=ref, price=current[a]) for ref, a in links.items() if a in current]
        for start in range(0, len(updates), connector.batch_size):
            for outcome in connector.push_prices(updates[start:start + connector.batch_size]):
                if outcome.status == "ok":
                    run.sent += 1
                else:
                    run.errors.append(f"{outcome.ref}: {outcome.message}")
    else:
        raise InvalidInput([Problem(field="price_direction", reason=f"{store.code} does not synchronize prices")])
    ExternalStore.objects.filter(pk=store.pk).update(last_price_run_at=timezone.now())
    return run
