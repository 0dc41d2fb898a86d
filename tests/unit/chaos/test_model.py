"""The chaos run's independent expectations: the ledger and ladder rules, by hand."""

from __future__ import annotations

import uuid

from chaos.model import Expected


def test_refunds_reverse_cumulatively_and_redemptions_spend() -> None:
    expected = Expected()
    member = uuid.uuid4()
    expected.registered(member)
    expected.purchased("o1", member, 10_050)  # 100 points (floor of 100.50)
    expected.refunded("o1", 3_350)  # a third: round(33.33) = 33
    expected.refunded("o1", 3_350)  # two thirds cumulatively: round(66.67) = 67
    expected.redeemed(member, 20)
    assert expected.balance(member) == 100 - 67 - 20
    assert expected.net_orders == 1
    expected.refunded("o1", 3_350)
    assert expected.balance(member) == -20  # spent points refunded: debt
    assert expected.net_orders == 0
    assert expected.refunded_minor == 10_050


def test_tier_is_the_highest_reached_since_refunds_do_not_revoke() -> None:
    expected = Expected()
    member = uuid.uuid4()
    expected.registered(member)
    expected.purchased("o1", member, 19_999)
    assert expected.members[member].tier == "basic"
    expected.purchased("o2", member, 45_000)  # 64,999: gold, silver skipped
    assert expected.members[member].tier == "gold"
    expected.refunded("o2", 45_000)
    assert expected.members[member].tier == "gold"
    assert expected.tier_counts() == {"gold": 1}
