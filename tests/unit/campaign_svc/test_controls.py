from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from campaign_svc.domain import (
    Budget,
    FrequencyCap,
    budget_allows,
    control_group,
    frequency_cap_allows,
    is_active,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.campaign_svc.factories import CAMPAIGN_ID, NOW, campaign


def member_ids(n: int) -> list[UUID]:
    return [UUID(int=i * 7919 + 1) for i in range(n)]


def test_control_share_is_about_twenty_percent_over_ten_thousand_members() -> None:
    groups = [control_group(CAMPAIGN_ID, m, Decimal("0.2")) for m in member_ids(10_000)]
    share = groups.count("control") / len(groups)
    # binomial sd = sqrt(0.2 * 0.8 / 10000) = 0.004; allow 4 sd.
    assert 0.184 <= share <= 0.216


def test_control_assignment_is_stable_across_calls() -> None:
    ids = member_ids(500)
    first = [control_group(CAMPAIGN_ID, m, 0.2) for m in ids]
    second = [control_group(CAMPAIGN_ID, m, Decimal("0.2")) for m in ids]
    assert first == second


def test_assignment_depends_on_the_campaign_too() -> None:
    ids = member_ids(1_000)
    a = [control_group(CAMPAIGN_ID, m, 0.5) for m in ids]
    b = [control_group(UUID(int=12345), m, 0.5) for m in ids]
    assert a != b


def test_zero_share_puts_everyone_in_treatment() -> None:
    assert {control_group(CAMPAIGN_ID, m, 0) for m in member_ids(1_000)} == {"treatment"}


@given(st.uuids(), st.uuids(), st.decimals(min_value=0, max_value=Decimal("0.9"), places=3))
def test_control_assignment_is_deterministic(
    campaign_id: UUID, member_id: UUID, share: Decimal
) -> None:
    assert control_group(campaign_id, member_id, share) == control_group(
        campaign_id, member_id, share
    )


@given(st.uuids(), st.uuids(), st.decimals(min_value=0, max_value=Decimal("0.8"), places=2))
def test_raising_the_share_only_moves_members_into_control(
    campaign_id: UUID, member_id: UUID, share: Decimal
) -> None:
    if control_group(campaign_id, member_id, share) == "control":
        assert control_group(campaign_id, member_id, share + Decimal("0.1")) == "control"


def test_active_window_is_half_open() -> None:
    c = campaign(
        controls={"starts_at": NOW.isoformat(), "ends_at": (NOW + timedelta(days=1)).isoformat()}
    )
    assert not is_active(c.controls, NOW - timedelta(microseconds=1))
    assert is_active(c.controls, NOW)
    assert is_active(c.controls, NOW + timedelta(days=1) - timedelta(microseconds=1))
    assert not is_active(c.controls, NOW + timedelta(days=1))


def test_open_window_is_always_active() -> None:
    assert is_active(campaign().controls, NOW)


CAP = FrequencyCap(max_count=2, period_days=7)


def test_frequency_cap_allows_below_the_limit() -> None:
    assert frequency_cap_allows([NOW - timedelta(days=1)], CAP, NOW)


def test_frequency_cap_refuses_exactly_at_the_limit() -> None:
    assert not frequency_cap_allows([NOW - timedelta(days=1), NOW - timedelta(days=2)], CAP, NOW)


def test_frequency_cap_forgets_exposures_exactly_one_period_old() -> None:
    times = [NOW - timedelta(days=7), NOW - timedelta(days=1)]
    assert frequency_cap_allows(times, CAP, NOW)
    times = [NOW - timedelta(days=7) + timedelta(microseconds=1), NOW - timedelta(days=1)]
    assert not frequency_cap_allows(times, CAP, NOW)


def test_no_cap_allows_anything() -> None:
    assert frequency_cap_allows([NOW] * 100, None, NOW)


def test_budget_allows_spending_exactly_up_to_the_limit() -> None:
    budget = Budget(unit="points", limit=1_000)
    assert budget_allows(900, 100, budget)
    assert not budget_allows(901, 100, budget)
    assert budget_allows(1_000, 0, budget)


def test_no_budget_allows_anything() -> None:
    assert budget_allows(10**12, 10**6, None)


def test_members_spread_over_both_groups() -> None:
    groups = {control_group(uuid4(), uuid4(), 0.5) for _ in range(200)}
    assert groups == {"treatment", "control"}
