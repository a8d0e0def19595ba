"""The core admin: lists render with a fixed number of queries, moves are
read-only, adjustments post through the ledger, tokens rotate and show the
new token once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from posinv.models import ApiToken, ReorderSuggestion, StockLevel, StockMove
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from posinv.services.tokens import token_find, token_issue
from tests.factories import make_article, make_barcode, make_location, valid_ean13

pytestmark = pytest.mark.django_db
EAN = valid_ean13("400638133393")


def receive(sku: str, location: str, qty: str, key: str):
    return stock_moves_post(
        moves=[MoveSpec(kind="receipt", idempotency_key=key, quantity=Decimal(qty), sku=sku, location_code=location)],
        origin=StockOrigin(kind="user", code="clerk"),
    )


def stock_world(articles: int):
    make_location(code="S1")
    make_location(code="W1", kind="warehouse")
    for i in range(articles):
        article = make_article(sku=f"A-{i:03d}")
        make_barcode(article=article, code=valid_ean13(f"2000000{i:05d}"))
        receive(article.sku, "S1", "5", f"s{i}")
        receive(article.sku, "W1", "7", f"w{i}")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/posinv/article/",
        "/admin/posinv/stocklevel/",
        "/admin/posinv/stockmove/",
        "/admin/posinv/location/",
        "/admin/posinv/barcode/",
        "/admin/posinv/reordersuggestion/",
        "/admin/posinv/jobrun/",
        "/admin/posinv/apitoken/",
        "/admin/posinv/stockchange/",
    ],
)
def test_changelists_cost_the_same_queries_for_5_or_25_rows(admin_client, url):
    stock_world(5)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    for i in range(5, 25):
        article = make_article(sku=f"A-{i:03d}")
        receive(article.sku, "S1", "5", f"s{i}")
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(url).status_code == 200
    assert len(many) == len(few)


def test_article_list_shows_total_on_hand_and_barcode_count(admin_client):
    stock_world(1)

    response = admin_client.get("/admin/posinv/article/")

    row = response.context["cl"].result_list[0]
    assert (row.sku, row.on_hand_total, row.barcode_count) == ("A-000", Decimal("12"), 1)


@pytest.mark.parametrize("term", [EAN, "0" + EAN, "A-1"])
def test_article_search_by_sku_or_any_barcode_form(admin_client, term):
    apple = make_article(sku="A-1")
    make_barcode(article=apple, code=EAN)
    make_article(sku="B-2")

    response = admin_client.get("/admin/posinv/article/", {"q": term})

    assert [a.sku for a in response.context["cl"].result_list] == ["A-1"]


def test_article_page_shows_stock_levels_inline(admin_client):
    stock_world(1)
    article = StockLevel.objects.first().article

    response = admin_client.get(f"/admin/posinv/article/{article.pk}/change/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "S1 (S1)" in content and "W1 (W1)" in content
    assert "Adjust…" in content


def test_stock_levels_filter_by_location_kind(admin_client):
    stock_world(2)

    response = admin_client.get("/admin/posinv/stocklevel/", {"location__kind": "warehouse"})

    assert [(lv.article.sku, lv.location.code, lv.on_hand) for lv in response.context["cl"].result_list] == [
        ("A-000", "W1", Decimal("7")),
        ("A-001", "W1", Decimal("7")),
    ]


def test_moves_are_read_only_with_their_origin(admin_client):
    stock_world(1)
    move = StockMove.objects.first()

    listing = admin_client.get("/admin/posinv/stockmove/")
    add = admin_client.get("/admin/posinv/stockmove/add/")
    edit = admin_client.post(f"/admin/posinv/stockmove/{move.pk}/change/", {"quantity": "99"})
    delete = admin_client.post(f"/admin/posinv/stockmove/{move.pk}/delete/", {"post": "yes"})

    assert "clerk" in listing.content.decode()
    assert add.status_code == 403
    assert edit.status_code == 403
    assert delete.status_code == 403
    assert list(StockMove.objects.order_by("pk").values_list("quantity", flat=True)) == [Decimal("5"), Decimal("7")]


def test_adjust_form_posts_a_move_with_reason_once(admin_client, admin_user):
    stock_world(1)
    level = StockLevel.objects.get(location__code="S1")
    form = admin_client.get(f"/admin/posinv/stocklevel/adjust/?level={level.pk}")
    key = form.context["form"].initial["key"]
    data = {
        "sku": "A-000",
        "location": level.location_id,
        "mode": "add",
        "quantity": "-2",
        "reason": "broken",
        "key": key,
    }

    first = admin_client.post("/admin/posinv/stocklevel/adjust/", data)
    second = admin_client.post("/admin/posinv/stocklevel/adjust/", data)  # double submit

    assert first.status_code == 302 and second.status_code == 302
    level.refresh_from_db()
    assert level.on_hand == Decimal("3")
    move = StockMove.objects.get(kind="adjustment")
    assert (move.quantity, move.reason, move.origin, move.origin_code) == (Decimal("-2"), "broken", "user", "admin")
    assert [str(m) for m in get_messages(second.wsgi_request)][-1] == (
        "Move already posted: -2.000 of A-000 at S1; on hand now 3.000."
    )


def test_adjust_form_count_mode_sets_the_counted_quantity(admin_client):
    stock_world(1)
    level = StockLevel.objects.get(location__code="W1")

    admin_client.post(
        "/admin/posinv/stocklevel/adjust/",
        {
            "sku": "A-000",
            "location": level.location_id,
            "mode": "count",
            "quantity": "4",
            "reason": "inventory",
            "key": "admin-adjust:x",
        },
    )

    level.refresh_from_db()
    assert level.on_hand == Decimal("4")
    assert StockMove.objects.get(kind="count").quantity == Decimal("-3")


def test_adjust_refused_by_the_ledger_shows_the_reason_and_moves_nothing(admin_client):
    make_article(sku="A-1")
    kiosk = make_location(code="K1", refuse_negative=True)

    response = admin_client.post(
        "/admin/posinv/stocklevel/adjust/",
        {"sku": "A-1", "location": kiosk.pk, "mode": "add", "quantity": "-1", "reason": "theft", "key": "k"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "quantity": ["would leave -1 on hand (now 0); this location refuses negative stock"]
    }
    assert not StockMove.objects.exists()


def test_adjust_needs_a_reason_and_a_known_sku(admin_client):
    store = make_location(code="S1")

    response = admin_client.post(
        "/admin/posinv/stocklevel/adjust/",
        {"sku": "NOPE", "location": store.pk, "mode": "add", "quantity": "1", "reason": "", "key": "k"},
    )

    assert response.context["form"].errors == {
        "sku": ["no article with SKU 'NOPE'"],
        "reason": ["This field is required."],
    }
    assert not StockMove.objects.exists()


def test_rotate_action_shows_the_new_token_once_and_the_old_one_stops_working(admin_client):
    old = token_issue(kind="register", subject="R1")
    token = ApiToken.objects.get()

    response = admin_client.post(
        "/admin/posinv/apitoken/", {"action": "rotate", "_selected_action": [token.pk]}, follow=True
    )

    message = [str(m) for m in response.context["messages"]][0]
    new = message.split("<code>")[1].split("</code>")[0]
    assert message.startswith("New token for Cash register R1:")
    assert token_find(old) is None
    assert token_find(new).subject == "R1"
    assert new not in admin_client.get("/admin/posinv/apitoken/").content.decode()


def test_an_issued_tokens_page_opens_read_only(admin_client):
    token_issue(kind="register", subject="R1")
    token = ApiToken.objects.get()

    page = admin_client.get(f"/admin/posinv/apitoken/{token.pk}/change/")

    assert page.status_code == 200
    assert "R1" in page.content.decode() and token.key_hash not in page.content.decode()


def test_admin_issues_a_staff_token_from_the_add_form(admin_client, staff_user):
    response = admin_client.post(
        "/admin/posinv/apitoken/add/", {"kind": "user", "subject": "", "user": staff_user.pk}, follow=True
    )

    raw = [str(m) for m in response.context["messages"]][0].split("<code>")[1].split("</code>")[0]
    assert token_find(raw).user == staff_user
    assert ApiToken.objects.get().subject == "clerk"


def test_suggestion_actions(admin_client):
    stock_world(1)
    level = StockLevel.objects.get(location__code="S1")
    suggestion = ReorderSuggestion.objects.create(
        article=level.article,
        location=level.location,
        source="reorder_point",
        quantity_on_hand=5,
        trigger_level=10,
        suggested_quantity=15,
    )

    admin_client.post(
        "/admin/posinv/reordersuggestion/", {"action": "mark_ordered", "_selected_action": [suggestion.pk]}
    )

    suggestion.refresh_from_db()
    assert suggestion.state == "ordered"


def test_barcode_admin_validates_check_digit_and_uniqueness_in_any_gtin_form(admin_client):
    apple = make_article(sku="A-1")
    pear = make_article(sku="P-1")
    make_barcode(article=apple, code=EAN)

    bad_digit = admin_client.post(
        "/admin/posinv/barcode/add/", {"article": pear.pk, "code": EAN[:-1] + "0", "pack_qty": "1"}
    )
    taken = admin_client.post("/admin/posinv/barcode/add/", {"article": pear.pk, "code": "0" + EAN, "pack_qty": "1"})
    ok = admin_client.post("/admin/posinv/barcode/add/", {"article": pear.pk, "code": "036000291452", "pack_qty": "6"})

    assert bad_digit.context["adminform"].form.errors == {
        "code": [f"barcode '{EAN[:-1]}0' has check digit 0, expected {EAN[-1]} (EAN-13)"]
    }
    assert taken.context["adminform"].form.errors == {"code": [f"barcode 0{EAN} already belongs to A-1"]}
    assert ok.status_code == 302
    assert list(pear.barcodes.values_list("gtin", "pack_qty")) == [("00036000291452", Decimal("6"))]


def test_location_autocomplete_lists_locations_by_code(admin_client):
    # given locations created out of code order
    for code in ("W1", "S2", "S1"):
        make_location(code=code)
    # when the location box of a cash register is filled in
    answer = admin_client.get(
        "/admin/autocomplete/", {"app_label": "pos", "model_name": "cashregister", "field_name": "location", "term": ""}
    )
    # then the locations come by code (pytest.ini turns an unordered page into an error)
    assert answer.status_code == 200
    assert [row["text"].split(" ")[0] for row in answer.json()["results"]] == ["S1", "S2", "W1"]


def test_every_autocomplete_box_of_the_admin_answers(admin_client):
    from django.contrib import admin

    make_location(code="S1")
    make_article(sku="A-1")
    boxes = [
        (model._meta.app_label, model._meta.model_name, field)
        for model, model_admin in admin.site._registry.items()
        for field in model_admin.autocomplete_fields
    ]
    assert ("pos", "cashregister", "location") in boxes
    failing = []
    for app_label, model_name, field in boxes:
        answer = admin_client.get(
            "/admin/autocomplete/", {"app_label": app_label, "model_name": model_name, "field_name": field, "term": ""}
        )
        if answer.status_code != 200:
            failing.append((app_label, model_name, field, answer.status_code))
    assert failing == []
