from decimal import Decimal

import pytest
from pydantic import ValidationError
from tier_svc.domain import (
    Ladder,
    QualifyingMetric,
    TierDefinition,
    UnknownTierError,
    default_ladder,
)


def rung(code: str, rank: int, threshold: int, multiplier: str = "1") -> TierDefinition:
    return TierDefinition(
        code=code, name=code.title(), rank=rank, threshold=threshold, multiplier=Decimal(multiplier)
    )


def test_default_ladder_matches_the_contract() -> None:
    ladder = default_ladder()
    assert [(t.code, t.threshold, t.multiplier) for t in ladder.tiers] == [
        ("basic", 0, Decimal("1")),
        ("silver", 100_000, Decimal("1.25")),
        ("gold", 500_000, Decimal("1.5")),
        ("diamond", 2_000_000, Decimal("2")),
    ]
    assert ladder.metric is QualifyingMetric.SPEND
    assert ladder.window_days == 365
    assert ladder.protection_days == 365


def test_tiers_are_sorted_by_rank_whatever_order_they_come_in() -> None:
    ladder = Ladder(tiers=(rung("gold", 2, 500), rung("basic", 0, 0), rung("silver", 1, 100)))
    assert [t.code for t in ladder.tiers] == ["basic", "silver", "gold"]


def test_duplicate_codes_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"tiers\.code: 'basic' is used by more than one"):
        Ladder(tiers=(rung("basic", 0, 0), rung("basic", 1, 100)))


def test_duplicate_ranks_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"tiers\.rank: 1 is used by more than one"):
        Ladder(tiers=(rung("basic", 0, 0), rung("silver", 1, 100), rung("gold", 1, 200)))


def test_first_threshold_must_be_zero() -> None:
    with pytest.raises(ValidationError, match=r"tiers\[basic\]\.threshold: the lowest tier"):
        Ladder(tiers=(rung("basic", 0, 5), rung("silver", 1, 100)))


@pytest.mark.parametrize("silver_threshold", [0, 99, 100])
def test_thresholds_must_strictly_increase(silver_threshold: int) -> None:
    with pytest.raises(ValidationError, match=r"tiers\[gold\]\.threshold: must be greater"):
        Ladder(
            tiers=(
                rung("basic", 0, 0),
                rung("silver", 1, 100),
                rung("gold", 2, silver_threshold),
            )
        )


@pytest.mark.parametrize("multiplier", ["0", "-1.5"])
def test_multiplier_must_be_positive(multiplier: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rung("basic", 0, 0, multiplier)
    assert caught.value.errors()[0]["loc"] == ("multiplier",)


def test_code_must_be_a_lowercase_identifier() -> None:
    with pytest.raises(ValidationError) as caught:
        rung("Gold Tier", 0, 0)
    assert caught.value.errors()[0]["loc"] == ("code",)


def test_ladder_needs_at_least_one_tier() -> None:
    with pytest.raises(ValidationError) as caught:
        Ladder(tiers=())
    assert caught.value.errors()[0]["loc"] == ("tiers",)


def test_ladder_is_configuration_data() -> None:
    data = default_ladder().model_dump(mode="json")
    data["metric"] = "orders"
    data["tiers"][1]["threshold"] = 5
    ladder = Ladder.model_validate(data)
    assert ladder.metric is QualifyingMetric.ORDERS
    assert ladder.tier("silver").threshold == 5


def test_tier_for_value_boundaries() -> None:
    ladder = default_ladder()
    assert ladder.tier_for_value(0).code == "basic"
    assert ladder.tier_for_value(99_999).code == "basic"
    assert ladder.tier_for_value(100_000).code == "silver"
    assert ladder.tier_for_value(1_999_999).code == "gold"
    assert ladder.tier_for_value(2_000_000).code == "diamond"
    assert ladder.tier_for_value(-10).code == "basic"


def test_unknown_tier_raises() -> None:
    with pytest.raises(UnknownTierError):
        default_ladder().tier("platinum")


def test_next_above() -> None:
    ladder = default_ladder()
    assert ladder.next_above("silver") == ladder.tier("gold")
    assert ladder.next_above("diamond") is None
