"""Customer reads: matching a customer by any identifier the till
captured, purchase history and totals, and recommendations from
co-purchase counts (customers who bought this also bought)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Max, Min, Q, Sum

from backoffice.selectors.reports import REVENUE
from pos.models import Customer, Receipt, ReceiptLine
from posinv.exceptions import InvalidInput, NotFound, Problem


def customer_match(*, customer_no: str = "", card_no: str = "", email: str = "") -> Customer | None:
    """The customer with this customer no., else this card no., else this
    e-mail (case-insensitive), the way a till identifies a shopper."""
    if not (customer_no or card_no or email):
        raise InvalidInput([Problem(field="customer_no", reason="give a customer no., card no. or e-mail")])
    if customer_no:
        found = Customer.objects.filter(customer_no=customer_no).first()
        if found:
            return found
    if card_no:
        found = Customer.objects.filter(card_no=card_no).order_by("pk").first()
        if found:
            return found
    if email:
        return Customer.objects.filter(email__iexact=email.strip()).order_by("pk").first()
    return None


def customer_get(*, customer_no: str) -> Customer:
    customer = Customer.objects.filter(customer_no=customer_no).first()
    if customer is None:
        raise NotFound([Problem(field="customer_no", reason=f"no customer {customer_no!r}", code="not_found")])
    return customer


def customer_totals(*, customer: Customer) -> dict:
    """Receipts, items, revenue, first and last purchase of a customer."""
    receipts = Receipt.objects.filter(customer=customer).aggregate(
        receipts=Count("pk"), first=Min("created_at"), last=Max("created_at"), total=Sum("total")
    )
    items = ReceiptLine.objects.filter(receipt__customer=customer).aggregate(quantity=Sum("quantity"))
    return {
        "receipts": receipts["receipts"],
        "revenue": Decimal(receipts["total"] or 0).quantize(Decimal("0.01")),
        "items": Decimal(items["quantity"] or 0).quantize(Decimal("0.001")),
        "first_purchase": receipts["first"],
        "last_purchase": receipts["last"],
    }


def customer_articles(*, customer: Customer, limit: int = 20) -> list[dict]:
    """What the customer buys: per article, receipts, quantity and revenue, most often first."""
    rows = (
        ReceiptLine.objects.filter(receipt__customer=customer, article__isnull=False)
        .values("article__sku", "article__name")
        .annotate(revenue=Sum(REVENUE), receipts=Count("receipt_id", distinct=True), units=Sum("quantity"))
        .order_by("-receipts", "-units", "article__sku")[:limit]
    )
    return [
        {
            "sku": row["article__sku"],
            "name": row["article__name"],
            "receipts": row["receipts"],
            "quantity": Decimal(row["units"]).quantize(Decimal("0.001")),
            "revenue": Decimal(row["revenue"]).quantize(Decimal("0.01")),
        }
        for row in rows
    ]


def customer_receipts(*, customer: Customer, limit: int = 50):
    """The customer's latest receipts with their location and line count."""
    return (
        Receipt.objects.filter(customer=customer)
        .select_related("register__location")
        .annotate(line_count=Count("lines"))
        .order_by("-created_at")[:limit]
    )


def customer_recommendations(*, customer: Customer, limit: int = 10, often: int = 2) -> list[dict]:
    """Articles bought by the customers who bought what this customer
    bought, scored by how many such customers bought them, excluding what
    this customer already buys often (on `often` or more receipts). Ties
    go to the article sold more overall, then by SKU."""
    if limit < 1 or limit > 100:
        raise InvalidInput([Problem(field="limit", reason="must be between 1 and 100")])
    if often < 1:
        raise InvalidInput([Problem(field="often", reason="must be at least 1")])
    own = ReceiptLine.objects.filter(receipt__customer=customer, article__isnull=False, quantity__gt=0)
    mine = own.values("article_id")
    frequent = (
        own.values("article_id")
        .annotate(n=Count("receipt_id", distinct=True))
        .filter(n__gte=often)
        .values("article_id")
    )
    peers = (
        ReceiptLine.objects.filter(article_id__in=mine, quantity__gt=0, receipt__customer__isnull=False)
        .exclude(receipt__customer=customer)
        .values("receipt__customer_id")
    )
    rows = (
        ReceiptLine.objects.filter(receipt__customer_id__in=peers, article__isnull=False, quantity__gt=0)
        .exclude(Q(article_id__in=frequent))
        .values("article_id", "article__sku", "article__name")
        .annotate(customers=Count("receipt__customer_id", distinct=True), quantity=Sum("quantity"))
        .order_by("-customers", "-quantity", "article__sku")[:limit]
    )
    return [{"sku": row["article__sku"], "name": row["article__name"], "customers": row["customers"]} for row in rows]
