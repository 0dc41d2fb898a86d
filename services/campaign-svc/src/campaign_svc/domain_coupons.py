"""Coupons: unguessable codes, terms, discounts for a basket and redemption checks.

Pure functions; the rules chosen are in docs/decisions/0004-campaign-rules.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

CouponKind = Literal["percent", "amount", "free_shipping"]
CouponStatus = Literal["issued", "redeemed", "expired", "voided"]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]

# 32 symbols (5 bits each) without the look-alikes 0/O and 1/I.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_RANDOM_CHARS = 15  # 75 bits of entropy
CODE_GROUP = 4  # 15 random + 1 check character = XXXX-XXXX-XXXX-XXXX
CODE_ENTROPY_BITS = CODE_RANDOM_CHARS * 5
_INDEX = {symbol: i for i, symbol in enumerate(CODE_ALPHABET)}


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------- codes ----------


def generate_coupon_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh code like "7KQM-X2HD-RW9P-C4TB"; the last character is a check character."""
    body = "".join(CODE_ALPHABET[randbelow(len(CODE_ALPHABET))] for _ in range(CODE_RANDOM_CHARS))
    return _grouped(body + check_character(body))


def check_character(body: str) -> str:
    """Luhn mod 32 check character: catches every single typo and most adjacent swaps."""
    n = len(CODE_ALPHABET)
    total = 0
    for position, symbol in enumerate(reversed(body)):
        addend = _INDEX[symbol] * (2 if position % 2 == 0 else 1)
        total += addend // n + addend % n
    return CODE_ALPHABET[(n - total % n) % n]


def normalize_coupon_code(text: str) -> str | None:
    """The canonical form of what a shopper typed, or None when it cannot be a code.

    Case, spaces and hyphens do not matter; the check character must match, so most
    typos are refused before any database lookup.
    """
    compact = "".join(ch for ch in text.upper() if ch not in " -")
    if len(compact) != CODE_RANDOM_CHARS + 1 or any(ch not in _INDEX for ch in compact):
        return None
    body, check = compact[:-1], compact[-1]
    return _grouped(compact) if check_character(body) == check else None


def is_well_formed_code(code: str) -> bool:
    """True only for a code already in canonical form."""
    return normalize_coupon_code(code) == code


def _grouped(compact: str) -> str:
    return "-".join(compact[i : i + CODE_GROUP] for i in range(0, len(compact), CODE_GROUP))


# ---------- terms and coupons ----------


class CouponTerms(_Value):
    """What a coupon gives. `value`: whole percent (1–100), minor units, or 0 for shipping."""

    kind: CouponKind
    value: Annotated[int, Field(ge=0)] = 0
    max_discount_minor: Annotated[int, Field(ge=1)] | None = None
    min_spend_minor: Annotated[int, Field(ge=0)] = 0
    currency: Currency | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CouponTerms:
        if self.kind == "percent" and not 1 <= self.value <= 100:
            raise ValueError("value: a percent coupon needs 1 to 100")
        if self.kind == "amount" and self.value < 1:
            raise ValueError("value: an amount coupon needs at least 1 minor unit")
        if self.kind == "free_shipping" and self.value != 0:
            raise ValueError("value: a free-shipping coupon has no value; use 0")
        if self.max_discount_minor is not None and self.kind != "percent":
            raise ValueError("max_discount_minor: only a percent coupon has a cap")
        money = self.kind == "amount" or self.min_spend_minor > 0 or self.max_discount_minor
        if money and self.currency is None:
            raise ValueError("currency: required for an amount, a cap or a minimum spend")
        return self


class Coupon(_Value):
    """An issued coupon as the domain sees it."""

    coupon_id: UUID
    campaign_id: UUID
    member_id: UUID
    code: str
    terms: CouponTerms
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    status: CouponStatus = "issued"


def issue_coupon(
    *,
    coupon_id: UUID,
    campaign_id: UUID,
    member_id: UUID,
    code: str,
    terms: CouponTerms,
    valid_from: datetime,
    valid_until: datetime,
) -> Coupon:
    return Coupon(
        coupon_id=coupon_id,
        campaign_id=campaign_id,
        member_id=member_id,
        code=code,
        terms=terms,
        valid_from=valid_from,
        valid_until=valid_until,
    )


# ---------- discounts ----------


@dataclass(frozen=True)
class Discount:
    items_minor: int
    shipping_minor: int

    @property
    def total_minor(self) -> int:
        return self.items_minor + self.shipping_minor


def compute_discount(terms: CouponTerms, items_minor: int, shipping_minor: int = 0) -> Discount:
    """The discount on a basket: never more than the items (or the shipping) it applies to.

    Percent rounds down to the minor unit (never over-discounts) and respects the cap;
    an amount coupon is capped at the items total (no change is given); free shipping
    takes the whole shipping charge.
    """
    items, shipping = max(items_minor, 0), max(shipping_minor, 0)
    if terms.kind == "free_shipping":
        return Discount(0, shipping)
    if terms.kind == "percent":
        off = items * terms.value // 100
        if terms.max_discount_minor is not None:
            off = min(off, terms.max_discount_minor)
        return Discount(min(off, items), 0)
    return Discount(min(terms.value, items), 0)


# ---------- redemption ----------


class CouponRefusal(StrEnum):
    NOT_OWNER = "not_owner"
    VOIDED = "voided"
    ALREADY_REDEEMED = "already_redeemed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    CURRENCY_MISMATCH = "currency_mismatch"
    BELOW_MINIMUM_SPEND = "below_minimum_spend"


def check_redeemable(
    coupon: Coupon,
    member_id: UUID,
    basket_total_minor: int,
    now: datetime,
    basket_currency: str | None = None,
) -> CouponRefusal | None:
    """None when the member may redeem the coupon on this basket now, else why not.

    Ownership is checked first so nobody learns anything about another member's coupon.
    Validity is valid_from <= now < valid_until. The minimum spend is compared with the
    items total (before discount, without shipping).
    """
    if coupon.member_id != member_id:
        return CouponRefusal.NOT_OWNER
    if coupon.status == "voided":
        return CouponRefusal.VOIDED
    if coupon.status == "redeemed":
        return CouponRefusal.ALREADY_REDEEMED
    if coupon.status == "expired" or now >= coupon.valid_until:
        return CouponRefusal.EXPIRED
    if now < coupon.valid_from:
        return CouponRefusal.NOT_YET_VALID
    currency = coupon.terms.currency
    if currency is not None and basket_currency is not None and currency != basket_currency:
        return CouponRefusal.CURRENCY_MISMATCH
    if basket_total_minor < coupon.terms.min_spend_minor:
        return CouponRefusal.BELOW_MINIMUM_SPEND
    return None
