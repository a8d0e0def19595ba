"""Product links: our articles matched to a store's products by SKU, then by
barcode, with a report of what matched, what is missing on either side and
what is ambiguous (never guessed)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from carts.models import ExternalStore, ProductLink, StackEntry
from carts.services.stack import BULK_ANALYZE_ROWS, tables_analyze
from carts.services.stores import store_connector
from posinv.bounds import quantity_within
from posinv.models import Article, Barcode

REPORT_ROWS = 500


def links_match(*, store: ExternalStore, progress: Callable[[int], None] | None = None) -> dict:
    """List the store's products and link each to the article with the same
    SKU (or, failing that, barcode). Existing links are kept or updated.
    Returns (and stores on the store) the match report."""
    remote = []
    for product in store_connector(store=store).list_products():
        remote.append(product)
        if progress:
            progress(len(remote))
    articles = {a.sku: a.pk for a in Article.objects.filter(active=True).only("pk", "sku")}
    gtins = dict(Barcode.objects.values_list("gtin", "article_id"))
    by_remote_sku: dict[str, list] = defaultdict(list)
    for product in remote:
        if product.sku:
            by_remote_sku[product.sku].append(product)
    report = {"matched": [], "missing_here": [], "missing_there": [], "ambiguous": []}
    chosen: dict[int, tuple] = {}
    claimed_by: dict[int, list] = defaultdict(list)
    for product in remote:
        via_sku = articles.get(product.sku) if product.sku else None
        via_barcode = gtins.get(product.barcode.zfill(14)) if product.barcode.isdigit() else None
        if product.sku and len(by_remote_sku[product.sku]) > 1:
            report["ambiguous"].append({"ref": product.ref, "sku": product.sku,
                                        "reason": f"{len(by_remote_sku[product.sku])} store products share this SKU"})
            continue
        if via_sku and via_barcode and via_sku != via_barcode:
            report["ambiguous"].append({"ref": product.ref, "sku": product.sku, "barcode": product.barcode,
                                        "reason": "SKU and barcode point to different articles"})
            continue
        article_id = via_sku or via_barcode
        if article_id is None:
            report["missing_here"].append({"ref": product.ref, "sku": product.sku, "barcode": product.barcode,
                                           "title": product.title})
            continue
        claimed_by[article_id].append(product)
        chosen[article_id] = (product, "sku" if via_sku else "barcode")
    for article_id, products in claimed_by.items():
        if len(products) > 1:
            chosen.pop(article_id)
            for product in products:
                report["ambiguous"].append({"ref": product.ref, "sku": product.sku,
                                            "reason": "several store products match the same article"})
    sku_of = {pk: sku for sku, pk in articles.items()}
    with transaction.atomic():
        current = {link.article_id: link for link in ProductLink.objects.filter(store=store)}
        # Links made by hand stay as they are and win over a match.
        manual = {aid: link for aid, link in current.items() if link.matched_by == ProductLink.Match.MANUAL}
        manual_refs = {link.remote_ref for link in manual.values()}
        chosen = {aid: pick for aid, pick in chosen.items() if aid not in manual and pick[0].ref not in manual_refs}
        # Links that no longer match (product gone, or moved to another
        # article) go; remote refs are unique per store.
        keep = [aid for aid, link in current.items() if aid in chosen and link.remote_ref == chosen[aid][0].ref]
        ProductLink.objects.filter(store=store).exclude(article_id__in=keep).exclude(
            matched_by=ProductLink.Match.MANUAL).delete()
        # Written in bulk: a catalogue of tens of thousands of products must
        # not cost several statements per product.
        kept = set(keep)
        to_update, to_create = [], []
        for article_id, (product, how) in sorted(chosen.items()):
            values = {"remote_ref": product.ref, "remote_product_id": product.product_id[:120],
                      "remote_sku": product.sku[:120], "remote_barcode": product.barcode[:40],
                      "matched_by": how, "remote_quantity": _known_quantity(product.quantity)}
            if article_id in kept:
                link = current[article_id]
                for name, value in values.items():
                    setattr(link, name, value)
                to_update.append(link)
            else:
                to_create.append(ProductLink(store=store, article_id=article_id, **values))
            report["matched"].append({"sku": sku_of.get(article_id, ""), "ref": product.ref, "by": how})
        ProductLink.objects.bulk_update(to_update, ["remote_ref", "remote_product_id", "remote_sku", "remote_barcode",
                                                    "matched_by", "remote_quantity"], batch_size=1000)
        ProductLink.objects.bulk_create(to_create, batch_size=1000)
        if len(to_create) >= BULK_ANALYZE_ROWS:
            tables_analyze(ProductLink)
        for article_id, link in manual.items():
            report["matched"].append({"sku": sku_of.get(article_id, ""), "ref": link.remote_ref, "by": "manual"})
        linked = set(chosen) | set(manual)
        # Entries of products no longer linked could never be sent: say so.
        StackEntry.objects.filter(store=store, state__in=[StackEntry.State.WAITING, StackEntry.State.SENDING]).exclude(
            article_id__in=linked).update(state=StackEntry.State.DISCARDED, last_response="product no longer linked",
                                          updated_at=timezone.now())
        report["missing_there"] = sorted(sku for pk, sku in sku_of.items() if pk not in linked)
        report["at"] = timezone.now().isoformat()
        report["counts"] = {k: len(v) for k, v in report.items() if isinstance(v, list)}
        # The stored copy keeps the counts and the first rows of each list (a
        # catalogue of 100,000 articles must not become one JSON cell).
        stored = {k: (v[:REPORT_ROWS] if isinstance(v, list) else v) for k, v in report.items()}
        ExternalStore.objects.filter(pk=store.pk).update(link_report=stored)
    store.link_report = report
    return report


def _known_quantity(value: int | None) -> int | None:
    """The store's figure as we keep it: beyond the system's bound
    (posinv/bounds.py) it is as unknown as no figure at all."""
    return value if value is not None and quantity_within(value) else None
