"""The connector interface: one registered backend class per platform, each
declaring its parameters (and which are secret), its batch size and its rate
budget, behind four operations (push quantities, fetch quantities, fetch
orders since a cursor, list products) plus webhook verification for
platforms that push orders. Connectors speak HTTP and translate answers into
the small result types below; they never touch our database (only their
rate budget may, without Redis: carts/ratelimit.py)."""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import requests
from django.conf import settings

from carts.ratelimit import Budget, budget_for
from ops.outbound import outbound_session
from posinv.http import retry_after_seconds


@dataclass(frozen=True)
class Param:
    """A parameter a connector needs; `secret` ones are stored apart and never shown back."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    default: str = ""


@dataclass(frozen=True)
class RateSpec:
    """Rate budget of one platform credential: a token bucket of `capacity`
    tokens refilled at `per_second`, or, with `window_seconds`, at most
    `capacity` calls in any rolling `window_seconds` (carts/ratelimit.py)."""

    capacity: float
    per_second: float
    window_seconds: float = 0


@dataclass(frozen=True)
class RemoteProduct:
    ref: str
    sku: str = ""
    barcode: str = ""
    title: str = ""
    product_id: str = ""
    quantity: int | None = None
    price: Decimal | None = None


@dataclass(frozen=True)
class QuantityUpdate:
    """Set `ref` to `quantity`; `expected` is what we believe the store holds
    now (compare-and-set where the platform offers it; None opts out)."""

    ref: str
    quantity: int
    expected: int | None = None


@dataclass(frozen=True)
class PriceUpdate:
    """Set the price of `ref` (in the connector's configured remote price group)."""

    ref: str
    price: Decimal


@dataclass(frozen=True)
class BadRow:
    """A row of a feed that could not be read: where and why (the good rows still apply)."""

    row: int
    reason: str


@dataclass(frozen=True)
class PushOutcome:
    """Per item: `ok`, `stale` (compare-and-set refused: the store moved;
    `remote_quantity` is its figure when known) or `error` (`message`)."""

    ref: str
    status: str
    message: str = ""
    remote_quantity: int | None = None


@dataclass(frozen=True)
class RemoteLine:
    line_id: str
    sku: str
    quantity: Decimal
    barcode: str = ""
    title: str = ""
    refunded_quantity: Decimal = Decimal("0")


@dataclass(frozen=True)
class RemoteOrder:
    """An order as the store reports it; `status` is normalized to
    pending / open / cancelled / refunded."""

    external_id: str
    number: str
    status: str
    remote_status: str
    placed_at: datetime | None
    updated_at: datetime | None
    lines: tuple[RemoteLine, ...]
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OrdersPage:
    """One page of orders changed at or after a moment, sorted by
    (`updated_at`, `external_id`) ascending, every order carrying its
    `updated_at`; `more` says another page of the same query follows."""

    orders: tuple[RemoteOrder, ...]
    more: bool


class ConnectorError(Exception):
    """A call failed; `response` is what the store answered (kept as the entry's last response)."""

    def __init__(self, message: str, *, response: str = ""):
        # The text says what the store answered, so a failed run's error does too.
        if response and response != message:
            message = response[:500] if response.startswith(message) else f"{message}: {response[:500]}"
        super().__init__(message)
        self.response = response or message


class Throttled(ConnectorError):
    """The store asks us to slow down: wait `retry_after` seconds. Never counts as an attempt."""

    def __init__(self, message: str, *, retry_after: float, response: str = "", own_budget: bool = False):
        super().__init__(message, response=response)
        self.retry_after = retry_after
        # Our shared rate budget said wait (no call was made), not the platform.
        self.own_budget = own_budget


class TransientError(ConnectorError):
    """A 5xx or a refused connection: nothing was applied; retry with backoff."""


class UnknownOutcome(ConnectorError):
    """The request may or may not have been applied (a timeout): read back before sending again."""


class PermanentError(ConnectorError):
    """Bad credentials, a bad request: retrying the same call cannot help."""


class Unsupported(ConnectorError):
    """This platform does not offer the operation."""


class Connector:
    """Base of all connectors. Subclasses set the class attributes and
    implement the operations they support."""

    platform: ClassVar[str] = ""
    label: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    supports_inventory_sync: ClassVar[bool] = True
    supports_get_qoh: ClassVar[bool] = True
    compare_and_set: ClassVar[bool] = False
    api_versions: ClassVar[tuple[str, ...]] = ()  # the versions a store may choose (empty: none to choose)
    pushes_orders: ClassVar[bool] = False
    supports_prices: ClassVar[bool] = False  # list_products carries prices; push_prices works
    is_wholesaler_feed: ClassVar[bool] = False  # can only be downloaded from
    # Whether the platform itself takes stock for a pending order (Shopify
    # commits inventory when the order is created; WooCommerce only when it
    # is paid). Where it does not, the store's own pending orders do not
    # lower the figure we send it, or the cart would count them twice.
    pending_orders_take_stock: ClassVar[bool] = True
    # The shared order cursor (carts/services/order_cursor.py) asks again for
    # orders modified up to this long before the newest one it committed: a
    # write the platform stamped earlier but made visible later is still found.
    order_overlap_seconds: ClassVar[float] = 1.0
    batch_size: ClassVar[int] = 50
    rate: ClassVar[RateSpec] = RateSpec(capacity=10, per_second=5)
    timeout: ClassVar[float] = 10.0
    # Sleep short waits for the budget (up to POSINV_RATE_INLINE_WAIT_SECONDS)
    # instead of raising Throttled at once: for a platform whose window is
    # spent often in a normal run (BaseLinker's 100 requests a minute).
    waits_for_budget: ClassVar[bool] = False
    # The longest single wait for a platform's limit the caller accepts inside
    # a call (None: the connector's own rule). A job in a shared worker sets
    # POSINV_RATE_INLINE_WAIT_SECONDS: a longer wait raises Throttled, so the
    # job ends and gives its worker back instead of sleeping.
    max_single_wait: float | None = None

    def __init__(self, *, url: str, params: dict, secrets: dict, budget: Budget | None = None, timeout=None,
                 system: str = ""):
        """`system` is the store's code, which names this connector's calls in the log."""
        self.url = url.rstrip("/")
        self.values = {p.name: p.default for p in self.params}
        self.values.update({k: v for k, v in (params or {}).items()})
        self.values.update({k: v for k, v in (secrets or {}).items()})
        self.budget = budget or budget_for(self.platform, self.credential(), self.rate)
        self.timeout = timeout or self.timeout
        self.session = outbound_session(system=system, connector=self.platform)
        self.calls = 0
        self.bad_rows: list[BadRow] = []  # filled by list_products of feeds

    def credential(self) -> str:
        """What identifies the rate budget: by default the URL plus the first secret."""
        secret = next((str(self.values.get(p.name, "")) for p in self.params if p.secret), "")
        return f"{self.url}|{secret}"

    @classmethod
    def check_config(cls, *, params: dict, secrets: dict) -> list[str]:
        """Names of required parameters that are missing."""
        values = {**(params or {}), **(secrets or {})}
        return [p.name for p in cls.params if p.required and not str(values.get(p.name, "")).strip()]

    @classmethod
    def param_problems(cls, *, params: dict) -> list[tuple[str, str]]:
        """(parameter, reason) for each parameter value this platform cannot use."""
        return []

    # -- HTTP with the shared budget --------------------------------------
    def request(self, method: str, url: str, *, cost: float = 1, sends: bool = False, raw: bool = False,
                **kwargs) -> requests.Response:
        """One HTTP call within the credential's budget. `sends` marks a call
        that changes the store: its timeout is an unknown outcome. `raw`
        leaves the HTTP status to the caller (a platform whose answer says in
        its body whether it worked)."""
        wait = self.budget.take(cost)
        while wait > 0:
            if not self.waits_for_budget or wait > settings.POSINV_RATE_INLINE_WAIT_SECONDS:
                # A long wait is not slept here: the caller ends its job and its
                # continuation runs when the budget allows (docs/stores.md).
                raise Throttled(f"rate budget spent; {wait:.2f}s until the next call", retry_after=wait,
                                own_budget=True)
            time.sleep(wait)
            wait = self.budget.take(cost)
        self.calls += 1
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            if sends:
                raise UnknownOutcome(f"timed out after {self.timeout}s: {exc}") from exc
            raise TransientError(f"timed out after {self.timeout}s: {exc}") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"connection failed: {exc}") from exc
        self._pace_rest(response)
        if raw:
            return response
        if response.status_code == 429:
            retry = self.throttle_wait(response, cost)
            self.budget.block(retry)
            raise Throttled(f"429 Too Many Requests; retry after {retry}s", retry_after=retry,
                            response=_describe(response))
        if response.status_code >= 500:
            raise TransientError(f"HTTP {response.status_code}", response=_describe(response))
        if response.status_code in (401, 403):
            raise PermanentError(f"HTTP {response.status_code}: credentials refused", response=_describe(response))
        return response

    def throttle_wait(self, response: requests.Response, cost: float) -> float:
        """Seconds to wait after a 429: its Retry-After by default."""
        return _retry_after(response)

    def _pace_rest(self, response: requests.Response) -> None:
        """Shopify REST's leaky bucket reports itself on every answer
        (`X-Shopify-Shop-Api-Call-Limit: 39/40`): one call from full, hold
        every worker for one leak interval rather than earn a 429."""
        used, _, limit = (response.headers.get("X-Shopify-Shop-Api-Call-Limit") or "").partition("/")
        if used.isdigit() and limit.isdigit() and int(used) >= int(limit) - 1:
            self.budget.block(0.5)

    # -- operations ---------------------------------------------------------
    def list_products(self) -> Iterator[RemoteProduct]:
        raise Unsupported(f"{self.platform} cannot list products")

    def fetch_quantities(self, refs: Iterable[str]) -> dict[str, int]:
        raise Unsupported(f"{self.platform} cannot report quantities")

    def quantity_pages(self, *, start_page: int = 1) -> Iterator[tuple[int, dict[str, int], bool]]:
        """Every product's quantity, page by page from `start_page`: (page,
        {ref: quantity}, is the last page). A long download saves each page
        and resumes from the next one after an interruption. By default the
        whole listing is one page."""
        yield 1, {p.ref: p.quantity for p in self.list_products() if p.quantity is not None}, True

    def price_pages(self, *, start_page: int = 1) -> Iterator[tuple[int, dict[str, Decimal], bool]]:
        """Every product's price (in the configured remote group), page by page, as `quantity_pages`."""
        yield 1, {p.ref: p.price for p in self.list_products() if p.price is not None}, True

    def push_quantities(self, updates: list[QuantityUpdate]) -> list[PushOutcome]:
        raise Unsupported(f"{self.platform} does not take quantities")

    def push_prices(self, updates: list[PriceUpdate]) -> list[PushOutcome]:
        raise Unsupported(f"{self.platform} does not take prices")

    def fetch_orders(self, cursor: dict) -> tuple[list[RemoteOrder], dict]:
        """Orders changed since `cursor`, oldest first, and the cursor to save
        after commit. Superseded by `fetch_orders_page` (the one shared
        cursor rule); kept for connectors not yet moved onto it."""
        raise Unsupported(f"{self.platform} cannot list orders")

    def fetch_orders_page(self, *, since: datetime | None, page: int) -> OrdersPage:
        """Page `page` (from 1) of the orders modified at or after `since`
        (every order when None), oldest modification first, ties by id. The
        shared cursor (carts/services/order_cursor.py) overlaps, deduplicates
        and saves; a connector only translates `since` into its platform's
        filter (mind exclusive bounds and the timestamps' precision) and
        fills `RemoteOrder.updated_at`."""
        raise Unsupported(f"{self.platform} cannot list orders by modification time")

    @classmethod
    def pages_orders_by_modification(cls) -> bool:
        """Whether the connector is on the shared (modified_at, id) cursor."""
        return cls.fetch_orders_page is not Connector.fetch_orders_page

    def verify_webhook(self, *, body: bytes, headers) -> bool:
        return False

    def parse_webhook(self, *, body: bytes, headers) -> list[RemoteOrder]:
        raise Unsupported(f"{self.platform} does not push orders")


def _retry_after(response: requests.Response) -> float:
    # Without a readable Retry-After, a second; never less than 50 ms, so a
    # "0" does not turn into a hot loop against a peer that is refusing us.
    seconds = retry_after_seconds(response.headers.get("Retry-After"))
    return 1.0 if seconds is None else max(seconds, 0.05)


def _describe(response: requests.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:1500]}"


def describe(response: requests.Response) -> str:
    return _describe(response)


_REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make a connector available under its `platform` name."""
    _REGISTRY[cls.platform] = cls
    return cls


def connector_class(platform: str) -> type[Connector]:
    from carts import connectors  # noqa: F401 - imports every platform module

    try:
        return _REGISTRY[platform]
    except KeyError:
        raise KeyError(f"unknown platform {platform!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def platforms() -> dict[str, type[Connector]]:
    from carts import connectors  # noqa: F401

    return dict(_REGISTRY)

