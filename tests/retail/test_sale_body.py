"""The sale body's fast reading (`sale_in_plain`) gives exactly what SaleIn
validates to, or steps aside for SaleIn: a till sees the same answer and the
same error messages either way."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from retail.api.serializers import SaleIn, sale_in_plain

odd_numbers = st.one_of(
    st.from_regex(r"-?\d{1,13}(\.\d{1,4})?", fullmatch=True),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.floats(allow_nan=True),
    st.sampled_from(
        ["1", " 1", "1e3", "", "-0", "00000000000001", "1.000", "NaN", True, None,
         "12345678901.123", "123456789012", "123456789012.12", "1234567890123", "1.0001", "1.001", 10**12]
    ),
)
odd_texts = st.one_of(
    st.text(max_size=70),
    st.sampled_from(
        ["4006381333931", " PEN-01", "PEN-01 ", "A\x00", "x" * 32, "x" * 33, "x" * 64, "x" * 65, "", 7, None]
    ),
)


def usually(good, odd):
    # Mostly what a till sends, so the fast reading really answers; now and then anything.
    return st.one_of(good, good, odd)


quantities = usually(st.from_regex(r"-?\d{1,3}(\.\d{1,3})?", fullmatch=True) | st.integers(-99, 99), odd_numbers)
money = usually(st.from_regex(r"\d{1,4}(\.\d{1,2})?", fullmatch=True), odd_numbers)
texts = usually(st.from_regex(r"[A-Z0-9-]{1,14}", fullmatch=True), odd_texts)
line = st.fixed_dictionaries(
    {"quantity": quantities, "price": money},
    optional={"code": texts, "sku": texts, "discount": money, "other": odd_texts},
)
payment = st.fixed_dictionaries({"method": texts, "amount": money}, optional={"extra": odd_texts})
body = st.fixed_dictionaries(
    {"lines": st.lists(line, min_size=1, max_size=4)},
    optional={"payments": st.lists(payment, max_size=2) | st.none(), "receipt_no": texts},
)


def _plain(data):
    return json.loads(json.dumps(data, default=str))


def test_the_fast_reading_agrees_with_the_serializer_or_steps_aside():
    answered = []

    @settings(max_examples=1000, deadline=None, derandomize=True)
    @given(body)
    def agrees(data):
        fast = sale_in_plain(data)
        if fast is not None:
            serializer = SaleIn(data=data)
            assert serializer.is_valid(), serializer.errors
            assert _plain(fast) == _plain(serializer.validated_data)
            answered.append(data)

    agrees()
    # a property that never met a body the fast reading answers would prove nothing
    assert len(answered) > 40


def test_a_till_s_usual_body_is_read_without_the_serializer():
    data = {
        "lines": [
            {"code": "4006381333931", "quantity": "2", "price": "1.99"},
            {"sku": "BAG-01", "quantity": 1, "price": "0.10", "discount": "0.05"},
        ],
        "payments": [{"method": "card", "amount": "4.03"}],
        "receipt_no": "T7-0001",
    }

    fast = sale_in_plain(data)

    assert fast is not None
    serializer = SaleIn(data=data)
    serializer.is_valid(raise_exception=True)
    assert _plain(fast) == _plain(serializer.validated_data)


def test_bodies_the_serializer_must_judge_step_aside():
    assert sale_in_plain({"lines": []}) is None  # its "may not be empty" message
    assert sale_in_plain({"lines": [{"code": "1", "quantity": "1.0001", "price": "1"}]}) is None
    assert sale_in_plain({"lines": [{"code": " 1", "quantity": "1", "price": "1"}]}) is None
    assert sale_in_plain({"lines": [{"quantity": "1", "price": "1"}], "customer": {"customer_no": "C1"}}) is None
