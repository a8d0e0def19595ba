"""Stores and what they may show: connectors, settings and available-to-sell."""
from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q, Sum

from carts.connectors.base import Connector, PermanentError, connector_class
from carts.models import CartSettings, ExternalStore, ImportedOrderLine
from posinv.bounds import published_quantity
from posinv.crypto import ENV_KEYS, SecretUndecryptable, secret_decrypt, secrets_encrypt, secrets_rotate
from posinv.exceptions import InvalidInput, Problem
from posinv.models import Location, StockLevel


def cart_settings_get() -> CartSettings:
    """The system parameters (created with defaults on first use)."""
    settings_row, _ = CartSettings.objects.get_or_create(pk=1)
    return settings_row


class StoreSecretsUnreadable(PermanentError):
    """The store's stored secrets cannot be opened: the key that encrypted
    them is not among the configured ones (wrong or missing key), or the keys
    are malformed. The message names the store and the secret, never the
    ciphertext or a key."""


def _unreadable(store: ExternalStore, what: str) -> StoreSecretsUnreadable:
    return StoreSecretsUnreadable(
        f"store {store.code}: {what} cannot be decrypted with the keys in {ENV_KEYS} (wrong or missing key); "
        "put back the key that encrypted it or enter the secret again in the admin")


def store_connector(*, store: ExternalStore, **kwargs) -> Connector:
    """The connector for `store`, with its parameters and secrets. The one
    place where secrets are decrypted: they live in plain text only inside
    the connector it returns."""
    cls = connector_class(store.platform)
    plain = {}
    for name, stored in (store.secrets or {}).items():
        try:
            plain[name] = secret_decrypt(stored=stored)
        except SecretUndecryptable:
            # `from None`: the cause carries nothing useful and the log line
            # of a failed job must not grow a chain of crypto internals.
            raise _unreadable(store, f"secret {name}") from None
        except ImproperlyConfigured as exc:
            raise StoreSecretsUnreadable(f"store {store.code}: {exc}") from None
    params = dict(store.params or {})
    if store.api_version:
        params["api_version"] = store.api_version
    return cls(url=store.url, params=params, secrets=plain, system=store.code, **kwargs)


def store_order_location(*, store: ExternalStore) -> Location:
    """Where the store's orders take stock: its order location or its first location."""
    if store.order_location_id:
        return store.order_location
    location = store.locations.order_by("code").first()
    if location is None:
        raise InvalidInput([Problem(field="locations", reason=f"store {store.code} sells no location's stock")])
    return location


def store_validate(*, store: ExternalStore, secrets: dict | None = None) -> None:
    """Refuse a configuration that cannot work: unknown platform, missing
    parameters, inventory sync where the platform has none."""
    problems = []
    try:
        cls = connector_class(store.platform)
    except KeyError as exc:
        raise InvalidInput([Problem(field="platform", reason=str(exc.args[0]))]) from exc
    missing = cls.check_config(params=store.params, secrets=secrets if secrets is not None else store.secrets)
    for name in missing:
        problems.append(Problem(field=name, reason=f"required by {cls.label}"))
    problems.extend(Problem(field=name, reason=reason) for name, reason in cls.param_problems(params=store.params))
    secret_names = {p.name for p in cls.params if p.secret}
    for name in store.params or {}:
        if name in secret_names:
            problems.append(Problem(field=name, reason="is secret: give it as a secret, not a parameter"))
    if store.api_version and store.api_version not in cls.api_versions:
        problems.append(Problem(field="api_version", reason=(
            f"{cls.label} supports the versions {', '.join(cls.api_versions)}" if cls.api_versions
            else f"{cls.label} has no API version to choose")))
    if store.sync_inventory and not cls.supports_inventory_sync:
        problems.append(Problem(field="sync_inventory", reason=f"{cls.label} does not support inventory sync"))
    if problems:
        raise InvalidInput(problems)


@transaction.atomic
def store_secrets_set(*, store: ExternalStore, values: dict) -> None:
    """Replace the given secret parameters (others are kept); empty values are ignored."""
    cls = connector_class(store.platform)
    allowed = {p.name for p in cls.params if p.secret}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InvalidInput([Problem(field=name, reason=f"not a secret of {cls.label}") for name in unknown])
    given = {k: str(v) for k, v in values.items() if v is not None and str(v).strip()}
    # Encrypted here so the instance in memory never holds the plain value either.
    merged = {**store.secrets, **secrets_encrypt(values=given)}
    ExternalStore.objects.filter(pk=store.pk).update(secrets=merged)
    store.secrets = merged


def store_secrets_rotate(*, store_id: int) -> int:
    """Re-encrypt the store's secrets under the first key of
    POSINV_SECRET_KEY_ENCRYPTION (after a new key was put first; the old ones
    must still be listed). Returns how many secrets were rewritten. A secret no
    key opens raises StoreSecretsUnreadable and leaves the row as it was."""
    with transaction.atomic():
        # Locked so an admin save of a new secret cannot be overwritten by the old one.
        store = ExternalStore.objects.select_for_update().get(pk=store_id)
        current = store.secrets or {}
        rotated = {}
        for name, stored in current.items():
            try:
                rotated.update(secrets_rotate(values={name: stored}))
            except SecretUndecryptable:
                raise _unreadable(store, f"secret {name}") from None
            except ImproperlyConfigured as exc:
                raise StoreSecretsUnreadable(f"store {store.code}: {exc}") from None
        if rotated:
            ExternalStore.objects.filter(pk=store.pk).update(secrets=rotated)
    return len(rotated)


def stores_receiving_stock() -> Q:
    """Stores that get our stock through the web stack: carts with
    "synchronize inventory" and inferior stores (stock direction "send")."""
    return Q(sync_inventory=True) | Q(stock_direction=ExternalStore.Direction.SEND)


def store_receives_stock(store: ExternalStore) -> bool:
    return store.sync_inventory or store.stock_direction == ExternalStore.Direction.SEND


def store_location_ids(*, store: ExternalStore) -> list[int]:
    """The locations whose stock `store` sells."""
    return list(store.locations.values_list("pk", flat=True))


def reservations_for(*, location_ids: list[int], article_ids, for_store: ExternalStore | None = None
                     ) -> dict[int, Decimal]:
    """Open reservations (lines of pending orders) per article taking stock
    from any of `location_ids`. Seen from `for_store`, its own pending orders
    do not count where its platform does not take stock for them (WooCommerce
    reduces stock only when an order is paid): the cart still sells that
    stock, and when the order is paid it takes it itself, exactly as our sale
    move does."""
    article_ids = list(article_ids)
    reserved = ImportedOrderLine.objects.filter(state=ImportedOrderLine.State.RESERVED, article_id__in=article_ids)
    if not reserved.exists():
        # The usual case, and on the hot path of every change: one cheap query.
        return {}
    stores = [
        s for s in ExternalStore.objects.prefetch_related("locations")
        if _order_location_id(s) in location_ids
        and not (for_store is not None and s.pk == for_store.pk and not _pending_takes_stock(s))
    ]
    if not stores:
        return {}
    rows = (
        ImportedOrderLine.objects.filter(
            state=ImportedOrderLine.State.RESERVED, article_id__in=list(article_ids), order__store__in=stores
        )
        .values("article_id")
        .annotate(total=Sum("quantity"))
    )
    return {row["article_id"]: row["total"] for row in rows}


def _pending_takes_stock(store: ExternalStore) -> bool:
    try:
        return connector_class(store.platform).pending_orders_take_stock
    except KeyError:
        return True


def _order_location_id(store: ExternalStore) -> int | None:
    if store.order_location_id:
        return store.order_location_id
    locations = sorted(store.locations.all(), key=lambda loc: loc.code)
    return locations[0].pk if locations else None


def _direct_available(store: ExternalStore, article_ids: list[int]) -> dict[int, int]:
    """Direct scenario: the source warehouse's last fetched figure (kept on
    its product links) minus this channel's buffer; unknown counts as 0."""
    from carts.models import ProductLink

    fetched = dict(ProductLink.objects.filter(store_id=store.direct_source_id, article_id__in=article_ids)
                   .values_list("article_id", "remote_quantity"))
    return {a: published_quantity(Decimal(fetched.get(a) or 0) - store.safety_buffer) for a in article_ids}


def store_available(*, store: ExternalStore, article_ids) -> dict[int, int]:
    """Available to sell per article: on hand at the store's locations minus
    the safety buffer and open reservations, rounded down, never below zero
    and never above the published bound (posinv/bounds.py: a sum over
    several locations may exceed one level's bound, a cart's 32-bit field
    may not). An absolute figure, so sending it twice does no harm
    (docs/carts.md)."""
    article_ids = list(article_ids)
    if store.direct_source_id:
        return _direct_available(store, article_ids)
    location_ids = store_location_ids(store=store)
    on_hand = {
        row["article_id"]: row["total"]
        for row in StockLevel.objects.filter(article_id__in=article_ids, location_id__in=location_ids)
        .values("article_id")
        .annotate(total=Sum("on_hand"))
    }
    reserved = reservations_for(location_ids=location_ids, article_ids=article_ids, for_store=store)
    result = {}
    for article_id in article_ids:
        figure = on_hand.get(article_id, Decimal(0)) - store.safety_buffer - reserved.get(article_id, Decimal(0))
        result[article_id] = published_quantity(figure)
    return result
