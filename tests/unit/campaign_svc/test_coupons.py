import re
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from campaign_svc.domain import (
    CODE_ALPHABET,
    CODE_ENTROPY_BITS,
    Coupon,
    CouponRefusal,
    CouponTerms,
    check_character,
    check_redeemable,
    compute_discount,
    generate_coupon_code,
    is_well_formed_code,
    issue_coupon,
    normalize_coupon_code,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.campaign_svc.factories import CAMPAIGN_ID, MEMBER_ID, NOW

CODE_SHAPE = re.compile(r"^[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}$")
OTHER_MEMBER = UUID(int=99)


# ---------- codes ----------


def test_alphabet_has_no_look_alikes_and_codes_carry_at_least_60_bits() -> None:
    assert len(CODE_ALPHABET) == 32
    assert not set("01IO") & set(CODE_ALPHABET)
    assert CODE_ENTROPY_BITS >= 60


def test_generated_codes_are_well_formed() -> None:
    for _ in range(200):
        code = generate_coupon_code()
        assert CODE_SHAPE.match(code), code
        assert is_well_formed_code(code)


def test_generation_uses_the_injected_randomness() -> None:
    code = generate_coupon_code(lambda n: 0)
    assert code[:-1] == "2222-2222-2222-222"
    assert code[-1] == check_character("2" * 15)


def test_codes_are_unique_over_many() -> None:
    codes = [generate_coupon_code() for _ in range(20_000)]
    assert len(set(codes)) == len(codes)


@given(st.lists(st.integers(min_value=0, max_value=31), min_size=15, max_size=15))
def test_any_body_with_its_check_character_is_well_formed(indices: list[int]) -> None:
    remaining = iter(indices)
    code = generate_coupon_code(lambda _n: next(remaining))
    assert code.replace("-", "")[:-1] == "".join(CODE_ALPHABET[i] for i in indices)
    assert is_well_formed_code(code)


@given(st.data())
def test_a_single_mistyped_character_is_refused(data: st.DataObject) -> None:
    code = generate_coupon_code()
    compact = code.replace("-", "")
    position = data.draw(st.integers(min_value=0, max_value=len(compact) - 1))
    wrong = data.draw(st.sampled_from([c for c in CODE_ALPHABET if c != compact[position]]))
    typo = compact[:position] + wrong + compact[position + 1 :]
    assert normalize_coupon_code(typo) is None


def test_normalization_ignores_case_spaces_and_hyphens() -> None:
    code = generate_coupon_code()
    typed = " " + code.lower().replace("-", " ") + " "
    assert normalize_coupon_code(typed) == code
    assert normalize_coupon_code(code.replace("-", "")) == code


@pytest.mark.parametrize("text", ["", "ABCD-EFGH", "ABCD-EFGH-JKLM-NPQRS", "0OIL-2222-2222-2222"])
def test_malformed_codes_are_refused(text: str) -> None:
    assert normalize_coupon_code(text) is None
    assert not is_well_formed_code(text)


def test_only_the_canonical_form_is_well_formed() -> None:
    code = generate_coupon_code()
    assert not is_well_formed_code(code.lower())


# ---------- discounts ----------


def terms(**data: Any) -> CouponTerms:
    return CouponTerms.model_validate(data)


def test_percent_discount_rounds_down() -> None:
    assert compute_discount(terms(kind="percent", value=15), 1_999).items_minor == 299


def test_percent_discount_respects_its_cap() -> None:
    t = terms(kind="percent", value=50, max_discount_minor=2_000, currency="EUR")
    assert compute_discount(t, 10_000).total_minor == 2_000
    assert compute_discount(t, 3_000).total_minor == 1_500


def test_hundred_percent_is_the_whole_basket_but_not_shipping() -> None:
    d = compute_discount(terms(kind="percent", value=100), 4_250, shipping_minor=495)
    assert (d.items_minor, d.shipping_minor) == (4_250, 0)


def test_amount_discount_never_exceeds_the_basket() -> None:
    t = terms(kind="amount", value=1_000, currency="EUR")
    assert compute_discount(t, 5_000).total_minor == 1_000
    assert compute_discount(t, 1_000).total_minor == 1_000
    assert compute_discount(t, 400).total_minor == 400
    assert compute_discount(t, 0).total_minor == 0


def test_free_shipping_takes_the_shipping_charge_only() -> None:
    d = compute_discount(terms(kind="free_shipping"), 5_000, shipping_minor=495)
    assert (d.items_minor, d.shipping_minor, d.total_minor) == (0, 495, 495)


@given(
    kind=st.sampled_from(["percent", "amount", "free_shipping"]),
    value=st.integers(min_value=1, max_value=10**7),
    cap=st.none() | st.integers(min_value=1, max_value=10**7),
    items=st.integers(min_value=0, max_value=10**9),
    shipping=st.integers(min_value=0, max_value=10**6),
)
def test_discount_never_exceeds_the_basket(
    kind: str, value: int, cap: int | None, items: int, shipping: int
) -> None:
    data: dict[str, Any] = {"kind": kind, "currency": "EUR"}
    if kind == "percent":
        data |= {"value": value % 100 + 1, "max_discount_minor": cap}
    elif kind == "amount":
        data["value"] = value
    d = compute_discount(CouponTerms.model_validate(data), items, shipping)
    assert 0 <= d.items_minor <= items
    assert 0 <= d.shipping_minor <= shipping
    assert d.total_minor <= items + shipping


# ---------- redemption ----------


def coupon(**overrides: Any) -> Coupon:
    c = issue_coupon(
        coupon_id=UUID(int=1),
        campaign_id=CAMPAIGN_ID,
        member_id=MEMBER_ID,
        code=generate_coupon_code(),
        terms=terms(kind="amount", value=500, min_spend_minor=2_000, currency="EUR"),
        valid_from=NOW,
        valid_until=NOW + timedelta(days=30),
    )
    return c.model_copy(update=overrides)


def test_a_valid_coupon_is_redeemable() -> None:
    assert check_redeemable(coupon(), MEMBER_ID, 2_000, NOW, "EUR") is None


def test_another_members_coupon_is_refused_first() -> None:
    voided = coupon(status="voided")
    assert check_redeemable(voided, OTHER_MEMBER, 0, NOW) is CouponRefusal.NOT_OWNER


def test_voided_coupon_is_refused() -> None:
    assert check_redeemable(coupon(status="voided"), MEMBER_ID, 5_000, NOW) is CouponRefusal.VOIDED


def test_a_second_redemption_says_already_redeemed() -> None:
    redeemed = coupon(status="redeemed")
    assert check_redeemable(redeemed, MEMBER_ID, 5_000, NOW) is CouponRefusal.ALREADY_REDEEMED


def test_validity_is_half_open() -> None:
    c = coupon()
    before = NOW - timedelta(microseconds=1)
    end = NOW + timedelta(days=30)
    assert check_redeemable(c, MEMBER_ID, 5_000, before) is CouponRefusal.NOT_YET_VALID
    assert check_redeemable(c, MEMBER_ID, 5_000, end - timedelta(microseconds=1)) is None
    assert check_redeemable(c, MEMBER_ID, 5_000, end) is CouponRefusal.EXPIRED


def test_expired_status_is_refused_even_inside_the_dates() -> None:
    assert (
        check_redeemable(coupon(status="expired"), MEMBER_ID, 5_000, NOW) is CouponRefusal.EXPIRED
    )


def test_minimum_spend_is_inclusive() -> None:
    c = coupon()
    assert check_redeemable(c, MEMBER_ID, 1_999, NOW) is CouponRefusal.BELOW_MINIMUM_SPEND
    assert check_redeemable(c, MEMBER_ID, 2_000, NOW) is None


def test_basket_in_another_currency_is_refused() -> None:
    assert (
        check_redeemable(coupon(), MEMBER_ID, 5_000, NOW, "USD") is CouponRefusal.CURRENCY_MISMATCH
    )


def test_issue_coupon_starts_issued() -> None:
    assert coupon().status == "issued"
