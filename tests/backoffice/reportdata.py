"""A small, fully known sales history for the report tests (see the
figures worked out in test_reports.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.backoffice.factories import make_register, make_supplier, make_supplier_article, sell, stock_receive
from tests.factories import make_article, make_location

WINDOW = (date(2026, 5, 1), date(2026, 5, 10))


def report_data():
    s1, s2 = make_location(code="S1"), make_location(code="S2")
    r1, r2 = make_register(location=s1, code="R1"), make_register(location=s2, code="R2")
    a = make_article(sku="A", name="Apple", category="fruit")
    b = make_article(sku="B", name="Banana", category="fruit")
    c = make_article(sku="C", name="Carrot", category="veg")
    d = make_article(sku="D", name="Dill")
    supplier = make_supplier(code="SUP")
    make_supplier_article(supplier=supplier, article=a, cost="1.20")
    make_supplier_article(supplier=supplier, article=b)
    stock_receive(article=a, location=s1, quantity="100")
    stock_receive(article=b, location=s1, quantity="20")
    stock_receive(article=c, location=s2, quantity="10")
    stock_receive(article=d, location=s1, quantity="7")
    sell(
        register=r1,
        at=datetime(2026, 5, 2, 10, tzinfo=UTC),
        items=[("A", "10", "2.00"), ("B", "5", "3.00")],
        discount="1.00",
    )
    sell(register=r1, at=datetime(2026, 5, 5, 11, tzinfo=UTC), items=[("A", "4", "2.00")])
    sell(register=r2, at=datetime(2026, 5, 5, 12, tzinfo=UTC), items=[("C", "3", "1.50"), ("A", "-1", "2.00")])
    sell(register=r1, at=datetime(2026, 4, 25, 9, tzinfo=UTC), items=[("A", "5", "2.00")])
    sell(register=r1, at=datetime(2026, 5, 11, 0, 0, tzinfo=UTC), items=[("A", "1", "2.00")])  # after the window
    return s1, s2
