"""posinv/db.py, the plain-SQL helpers of the hot paths: the same values the
ORM would give, on SQLite and PostgreSQL alike."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from posinv.db import columns_sql, objects_insert, row_instances
from posinv.models import Article, Location, Price, PriceGroup
from tests.factories import make_article, make_location

pytestmark = pytest.mark.django_db


def test_instances_read_by_hand_equal_the_orm_s():
    make_location(code="S1", name="Shop one")

    fields = ("id", "code", "name", "negative_stock", "active")
    table = connection.ops.quote_name(Location._meta.db_table)
    sql = f"SELECT {columns_sql(Location, fields)} FROM {table} WHERE code = %s"

    [found] = row_instances(sql, ["S1"], [(Location, fields)])

    orm = Location.objects.get(code="S1")
    assert (found.pk, found.code, found.name, found.negative_stock, found.active) == (
        orm.pk, orm.code, orm.name, orm.negative_stock, orm.active
    )
    assert found.active is True  # SQLite's 1 converted as the ORM converts it


def test_a_joined_row_gives_one_instance_per_part_and_none_for_a_missing_left_join():
    group = PriceGroup.objects.create(code="RETAIL", name="Retail")
    article = make_article(sku="A-1")
    priced = Price.objects.create(article=article, group=group, amount=Decimal("1.99"), valid_from=date(2026, 1, 1))
    unpriced = make_article(sku="A-2")
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {columns_sql(Article, ('id', 'sku'), 'a')}, {columns_sql(Price, ('id', 'amount', 'valid_from'), 'p')}"
        f" FROM {quote(Article._meta.db_table)} a LEFT JOIN {quote(Price._meta.db_table)} p ON p.article_id = a.id"
        " WHERE a.sku = %s"
    )
    parts = [(Article, ("id", "sku")), (Price, ("id", "amount", "valid_from"))]

    with_price = row_instances(sql, ["A-1"], parts)
    without = row_instances(sql, ["A-2"], parts)

    assert (with_price[0].pk, with_price[1].pk, with_price[1].amount, with_price[1].valid_from) == (
        article.pk, priced.pk, Decimal("1.99"), date(2026, 1, 1)
    )
    assert (without[0].pk, without[1]) == (unpriced.pk, None)
    assert row_instances(sql, ["NOPE"], parts) is None


def test_objects_insert_returns_new_keys_and_skips_clashes_on_the_given_key():
    first = objects_insert([Location(code="L1", name="One"), Location(code="L2", name="Two")],
                           ("code", "name", "kind", "negative_stock", "active"), returning="id")
    clash = objects_insert([Location(code="L1", name="Other")], ("code", "name", "kind", "negative_stock", "active"),
                           conflict_fields=("code",), returning="id")

    assert len(first) == 2 and clash == []
    assert dict(Location.objects.values_list("code", "name")) == {"L1": "One", "L2": "Two"}
    assert Location.objects.get(pk=first[1]).code == "L2"
