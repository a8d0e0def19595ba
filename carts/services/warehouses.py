"""External stores and wholesalers as superior or inferior warehouses
(seed 004, docs/stores.md): per store, stock and prices each have a
direction. Download (superior store, wholesaler): pull absolute quantities
and post the differences as counts into the target warehouse, pull prices
into the target price group (keeping history). Send (inferior store): push
the source warehouses' available-to-sell (the store's locations, summed) on
every run and, in between, through the web stack; push the group's prices."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from carts.connectors.base import BadRow, ConnectorError, PriceUpdate, Throttled, connector_class
from carts.models import ExternalStore, ProductLink, StoreDownload, StoreDownloadPage
from carts.services.qoh import SendResult, qoh_send
from carts.services.stack import stack_entries_add
from carts.services.stores import store_connector
from posinv.bounds import amount_problem, amount_within, quantity_problem, quantity_within
from posinv.exceptions import InvalidInput, Problem
from posinv.models import Location, Price, StockLevel, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.runs import schedule_held_for, schedule_release

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
    # A download the platform's rate limit stopped: it goes on from `next_page` then.
    paused_until: datetime | None = None
    pages_read: int = 0
    next_page: int = 0


def store_stock_run(*, store: ExternalStore, confirm: bool = False, on_page: Callable[[], None] | None = None
                    ) -> StockRun:
    """One stock run in the store's direction. A download goes page by page
    and is saved as it goes; `on_page` is called after each page (a job
    renews its lease there)."""
    store_directions_validate(store=store)
    if store.stock_direction == D.DOWNLOAD:
        return _stock_download(store, confirm, on_page)
    if store.stock_direction == D.SEND:
        run = StockRun(sent=qoh_send(store=store))
        ExternalStore.objects.filter(pk=store.pk).update(last_stock_run_at=timezone.now())
        return run
    if store.direct_channels.exists():
        return store_direct_fetch(store=store, confirm=confirm, on_page=on_page)
    raise InvalidInput([Problem(field="stock_direction", reason=f"{store.code} does not synchronize stock")])


def _bounded_figures(figures: dict, kind: str, bad_rows: list[BadRow]) -> dict:
    """The page's figures within the system's bound (posinv/bounds.py); one
    bad row for each other: a store's figure beyond it could be neither
    counted nor stored, and must not stop the good rows."""
    within, problem_of = (quantity_within, quantity_problem) if kind == StoreDownload.Kind.STOCK else (
        amount_within, amount_problem)
    kept = {}
    for ref, value in figures.items():
        if within(value):
            kept[ref] = value
        else:
            name = "quantity" if kind == StoreDownload.Kind.STOCK else "price"
            bad_rows.append(BadRow(len(bad_rows) + 1, f"product {ref}: {name} {value} {problem_of(value)}"))
    return kept


def _download_open(store: ExternalStore, kind: str) -> StoreDownload:
    """The store's unfinished download of `kind`, or a new one. A download
    still held from an earlier run is superseded: this run reads the store
    afresh (the feed may have been mended), and holds again if it must."""
    K = StoreDownload.State
    with transaction.atomic():
        StoreDownload.objects.filter(store=store, kind=kind, state=K.HELD).update(
            state=K.DISCARDED, decided_by="superseded by a newer run", decided_at=timezone.now())
        download = StoreDownload.objects.filter(store=store, kind=kind, state=K.FETCHING).first()
        if download is None:
            download = StoreDownload.objects.create(store=store, kind=kind)
    return download


def _download_fetch(download: StoreDownload, pages: Callable, connector,
                    on_page: Callable[[], None] | None, *, retry_seconds: float) -> datetime | None:
    """Read the pages the download still lacks, saving each one (and where to
    go on) in its own transaction. Returns None when every page is read, or
    the time the platform's rate limit lets it go on."""
    if download.complete:
        return None  # read already; only applying was left (a killed worker)
    try:
        for page, figures, last in pages(start_page=download.next_page):
            figures = _bounded_figures(figures, download.kind, connector.bad_rows)
            with transaction.atomic():
                StoreDownloadPage.objects.update_or_create(
                    download=download, page=page, defaults={"figures": {ref: str(v) for ref, v in figures.items()}})
                download.next_page, download.complete, download.resume_at = page + 1, last, None
                download.pages_read = StoreDownloadPage.objects.filter(download=download).count()
                download.bad_rows = [{"row": b.row, "reason": b.reason} for b in connector.bad_rows[:500]]
                download.save(update_fields=["next_page", "complete", "resume_at", "pages_read", "bad_rows",
                                             "updated_at"])
            if on_page:
                on_page()
    except Throttled as exc:
        download.resume_at = timezone.now() + timedelta(seconds=exc.retry_after)
        download.save(update_fields=["resume_at", "updated_at"])
        return download.resume_at
    except ConnectorError:
        # The store is down or refuses: the pages read so far are kept, and
        # the download goes on by the tab's interval, not at every tick.
        download.resume_at = timezone.now() + timedelta(seconds=retry_seconds)
        download.save(update_fields=["resume_at", "updated_at"])
        raise
    return None


def _download_figures(download: StoreDownload) -> dict[str, str]:
    figures: dict[str, str] = {}
    for page_figures in download.pages.order_by("page").values_list("figures", flat=True).iterator(chunk_size=20):
        figures.update(page_figures)
    StoreDownload.objects.filter(pk=download.pk).update(products_read=len(figures))
    return figures


def _download_settle(download: StoreDownload, state: str, *, outcome: dict | None = None, reason: str = "",
                     by: str = "") -> None:
    """Close a download: applied (its pages are no longer needed) or held with its reason."""
    with transaction.atomic():
        if state == StoreDownload.State.APPLIED:
            download.pages.all().delete()
        StoreDownload.objects.filter(pk=download.pk).update(
            state=state, outcome=outcome or {}, hold_reason=reason, decided_by=by[:150],
            decided_at=timezone.now() if by else None)


def _stock_download(store: ExternalStore, confirm: bool, on_page=None) -> StockRun:
    """Absolute quantities in, posted as counts where they differ. Nothing
    is posted when the store cannot be read (the error propagates), a run the
    platform's limit stops goes on later from the page it reached, and a run
    that would zero most products is held unless confirmed."""
    connector = store_connector(store=store)
    download = _download_open(store, StoreDownload.Kind.STOCK)
    paused = _download_fetch(download, connector.quantity_pages, connector, on_page,
                             retry_seconds=store.stock_interval_seconds)
    if paused is not None:
        return StockRun(paused_until=paused, pages_read=download.pages_read, next_page=download.next_page,
                        bad_rows=list(connector.bad_rows))
    remote = {ref: int(Decimal(v)) for ref, v in _download_figures(download).items()}
    run = _stock_apply(store, download, remote, confirm=confirm)
    run.bad_rows, run.pages_read = list(connector.bad_rows), download.pages_read
    return run


def _stock_apply(store: ExternalStore, download: StoreDownload, remote: dict[str, int], *, confirm: bool,
                 by: str = "") -> StockRun:
    run = StockRun(read=len(remote))
    links = dict(ProductLink.objects.filter(store=store).values_list("remote_ref", "article_id"))
    if store.stock_direction != D.DOWNLOAD:
        try:
            run.direct_queued = _record_fetched(store, remote, links, confirm=confirm)
        except InvalidInput as held:
            _download_settle(download, StoreDownload.State.HELD, reason=held.problems[0].reason)
            raise
        # Only feeding direct channels: nothing goes into our ledger.
        _download_settle(download, StoreDownload.State.APPLIED, outcome={"direct_queued": run.direct_queued}, by=by)
        ExternalStore.objects.filter(pk=store.pk).update(last_stock_run_at=timezone.now())
        return run
    run.unlinked = sum(1 for ref in remote if ref not in links)
    target = store.stock_target
    # The whole target warehouse in one plain query: an IN list of 50,000
    # article ids costs more to build than the rows it saves.
    levels = dict(StockLevel.objects.filter(location=target).values_list("article_id", "on_hand"))
    changes, zeroed, known = [], 0, 0
    for ref, article_id in links.items():
        quantity = remote.get(ref)
        if quantity is None:
            continue
        known += 1
        ours = levels.get(article_id, Decimal(0))
        if Decimal(quantity) == ours:
            run.unchanged += 1
            continue
        if quantity == 0 and ours > 0:
            zeroed += 1
        changes.append((article_id, Decimal(quantity)))
    if not confirm and known >= 4 and zeroed > known * store.zero_hold_share:
        reason = (f"{zeroed} of {known} products would drop to zero (more than {store.zero_hold_share:.0%}); "
                  "check the feed and confirm")
        _download_settle(download, StoreDownload.State.HELD, reason=reason)
        raise InvalidInput([Problem(field="confirm", code="implausible", reason=reason)])
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
    _download_settle(download, StoreDownload.State.APPLIED,
                     outcome={"read": run.read, "counted": run.counted, "unchanged": run.unchanged}, by=by)
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
        quantity = remote.get(row.remote_ref)
        if quantity is not None and quantity != row.remote_quantity:
            row.remote_quantity = quantity
            changed_rows.append(row)
    changed = {row.remote_ref for row in changed_rows}
    if not changed:
        return 0
    known = [row for row in rows if remote.get(row.remote_ref) is not None]
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


def store_direct_fetch(*, store: ExternalStore, confirm: bool = False, on_page=None) -> StockRun:
    """Fetch an external warehouse's figures for its direct channels only (no ledger moves)."""
    return _stock_download(store, confirm, on_page)


@dataclass
class PriceRun:
    read: int = 0
    changed: int = 0
    unchanged: int = 0
    sent: int = 0
    errors: list[str] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    paused_until: datetime | None = None
    pages_read: int = 0
    next_page: int = 0


def current_prices(*, group_id: int, article_ids, on=None) -> dict[int, Decimal]:
    """The price in force per article: the newest row valid on `on` (today)."""
    on = on or timezone.localdate()
    found: dict[int, Decimal] = {}
    for article_id, amount in (Price.objects.filter(group_id=group_id, article_id__in=list(article_ids),
                                                    valid_from__lte=on)
                               .order_by("article_id", "-valid_from").values_list("article_id", "amount")):
        found.setdefault(article_id, amount)
    return found


def store_price_run(*, store: ExternalStore, confirm: bool = False, on_page: Callable[[], None] | None = None
                    ) -> PriceRun:
    """One price run in the store's direction. A download goes page by page
    (saved as it goes, resumed after a pause) and is held, not applied, when
    it would zero or cut most prices, unless `confirm`."""
    store_directions_validate(store=store)
    if store.price_direction == D.DOWNLOAD:
        connector = store_connector(store=store)
        download = _download_open(store, StoreDownload.Kind.PRICES)
        paused = _download_fetch(download, connector.price_pages, connector, on_page,
                                 retry_seconds=store.price_interval_seconds)
        if paused is not None:
            return PriceRun(paused_until=paused, pages_read=download.pages_read, next_page=download.next_page,
                            bad_rows=list(connector.bad_rows))
        remote = {ref: Decimal(v) for ref, v in _download_figures(download).items()}
        run = _prices_apply(store, download, remote, confirm=confirm)
        run.bad_rows, run.pages_read = list(connector.bad_rows), download.pages_read
        return run
    if store.price_direction == D.SEND:
        connector = store_connector(store=store)
        links = dict(ProductLink.objects.filter(store=store).values_list("remote_ref", "article_id"))
        current = current_prices(group_id=store.price_group_id, article_ids=links.values())
        run = PriceRun()
        updates = [PriceUpdate(ref=ref, price=current[a]) for ref, a in links.items() if a in current]
        for start in range(0, len(updates), connector.batch_size):
            for outcome in connector.push_prices(updates[start:start + connector.batch_size]):
                if outcome.status == "ok":
                    run.sent += 1
                else:
                    run.errors.append(f"{outcome.ref}: {outcome.message}")
        ExternalStore.objects.filter(pk=store.pk).update(last_price_run_at=timezone.now())
        return run
    raise InvalidInput([Problem(field="price_direction", reason=f"{store.code} does not synchronize prices")])


def price_download_implausible(*, store: ExternalStore, current: dict[int, Decimal],
                               incoming: dict[int, Decimal]) -> str:
    """Why a price download looks like a broken feed, or "" when it does not:
    more than the store's `price_hold_share` of the prices we hold (above
    zero) would drop to zero or fall by more than its `price_cut_share`."""
    known = [(current[a], price) for a, price in incoming.items() if current.get(a, 0) > 0]
    if len(known) < 4:
        return ""
    floor = 1 - store.price_cut_share
    zeroed = sum(1 for _, new in known if new <= 0)
    cut = sum(1 for old, new in known if 0 < new < old * floor)
    if zeroed + cut <= len(known) * store.price_hold_share:
        return ""
    return (f"{zeroed + cut} of {len(known)} prices would drop to zero ({zeroed}) or fall by more than "
            f"{store.price_cut_share:.0%} ({cut}) (more than {store.price_hold_share:.0%}); check the feed and confirm")


def _prices_apply(store: ExternalStore, download: StoreDownload, remote: dict[str, Decimal], *, confirm: bool,
                  by: str = "") -> PriceRun:
    links = dict(ProductLink.objects.filter(store=store).values_list("remote_ref", "article_id"))
    current = current_prices(group_id=store.price_group_id, article_ids=links.values())
    incoming = {article_id: remote[ref] for ref, article_id in links.items() if ref in remote}
    run = PriceRun(read=len(remote))
    reason = "" if confirm else price_download_implausible(store=store, current=current, incoming=incoming)
    if reason:
        # Held like a stock download that zeroes most products: a broken feed's
        # 0.00 must not reach our price group, nor the stores it feeds.
        _download_settle(download, StoreDownload.State.HELD, reason=reason)
        raise InvalidInput([Problem(field="confirm", code="implausible", reason=reason)])
    today = timezone.localdate()
    with transaction.atomic():
        for article_id, price in incoming.items():
            if current.get(article_id) == price:
                run.unchanged += 1
                continue
            # A new row from today keeps the older ones as history.
            Price.objects.update_or_create(article_id=article_id, group_id=store.price_group_id,
                                           valid_from=today, defaults={"amount": price,
                                                                       "currency": store.price_group.currency})
            run.changed += 1
        _download_settle(download, StoreDownload.State.APPLIED,
                         outcome={"read": run.read, "changed": run.changed, "unchanged": run.unchanged}, by=by)
    ExternalStore.objects.filter(pk=store.pk).update(last_price_run_at=timezone.now())
    return run


def store_download_confirm(*, download_id: int, user: str) -> StoreDownload:
    """Apply a held download as it was read (a person checked it), recording who did."""
    # No transaction around it: the ledger's write is the outermost one. Two
    # people confirming at once do no harm: stock goes in as absolute counts
    # and prices as today's row, so the second application changes nothing.
    download = StoreDownload.objects.select_related("store").get(pk=download_id)
    if download.state != StoreDownload.State.HELD:
        raise InvalidInput([Problem(field="state", reason=f"only a held download can be applied; this one is "
                                                          f"{download.get_state_display().lower()}")])
    store = download.store
    figures = _download_figures(download)
    if download.kind == StoreDownload.Kind.STOCK:
        _stock_apply(store, download, {ref: int(Decimal(v)) for ref, v in figures.items()}, confirm=True, by=user)
    else:
        _prices_apply(store, download, {ref: Decimal(v) for ref, v in figures.items()}, confirm=True, by=user)
    _download_schedule_release(download, user=user)
    download.refresh_from_db()
    return download


def _download_schedule_release(download: StoreDownload, *, user: str) -> None:
    """A held download holds its schedule too (the scheduler's one rule):
    once a person applied or discarded it, the schedule runs by its interval again."""
    job = "store_stock" if download.kind == StoreDownload.Kind.STOCK else "store_prices"
    held = schedule_held_for(job=job, subject=download.store.code)
    if held is not None:
        schedule_release(state_ids=[held.pk], released_by=user)


def store_download_discard(*, download_id: int, user: str) -> StoreDownload:
    """Drop a held download: nothing of it is applied; the next run reads the store again."""
    with transaction.atomic():
        download = StoreDownload.objects.select_for_update().get(pk=download_id)
        if download.state != StoreDownload.State.HELD:
            raise InvalidInput([Problem(field="state", reason=f"only a held download can be discarded; this one is "
                                                              f"{download.get_state_display().lower()}")])
        download.pages.all().delete()
        StoreDownload.objects.filter(pk=download.pk).update(state=StoreDownload.State.DISCARDED,
                                                            decided_by=user[:150], decided_at=timezone.now())
    download.refresh_from_db()
    _download_schedule_release(download, user=user)
    return download


def store_downloads_unfinished() -> dict[tuple[int, str], datetime | None]:
    """(store id, kind) of every download still fetching, with the time the
    platform's limit lets it go on (None: at once, e.g. after a killed worker)."""
    return {(store_id, kind): resume_at for store_id, kind, resume_at in
            StoreDownload.objects.filter(state=StoreDownload.State.FETCHING, store__active=True)
            .values_list("store_id", "kind", "resume_at")}
