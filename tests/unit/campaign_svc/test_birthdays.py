from datetime import UTC, date, datetime

import pytest
from campaign_svc.domain import (
    birthday_due,
    birthday_in_year,
    is_birthday_today,
    local_date,
    occasion_key,
)

from tests.unit.campaign_svc.factories import campaign, member

# 2026-03-14 11:30 UTC is 2026-03-15 00:30 in Auckland (NZDT, +13) and 2026-03-14 04:30 in
# Los Angeles (PDT, −7).
INSTANT = datetime(2026, 3, 14, 11, 30, tzinfo=UTC)


def test_same_instant_is_a_different_day_in_auckland_and_los_angeles() -> None:
    assert local_date("Pacific/Auckland", INSTANT) == date(2026, 3, 15)
    assert local_date("America/Los_Angeles", INSTANT) == date(2026, 3, 14)
    assert is_birthday_today(3, 15, "Pacific/Auckland", INSTANT)
    assert not is_birthday_today(3, 15, "America/Los_Angeles", INSTANT)
    assert is_birthday_today(3, 14, "America/Los_Angeles", INSTANT)
    assert not is_birthday_today(3, 14, "Pacific/Auckland", INSTANT)


def test_new_year_birthday_keys_the_local_year() -> None:
    instant = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)  # 2027-01-01 01:00 in Auckland
    auckland = member(birth_month=1, birth_day=1, time_zone="Pacific/Auckland")
    c = campaign(trigger={"kind": "birthday"})
    assert birthday_due(c, auckland, instant)
    assert occasion_key(c, auckland, instant) == "birthday:2027"


@pytest.mark.parametrize(
    ("year", "celebrated"),
    [(2024, date(2024, 2, 29)), (2025, date(2025, 2, 28)), (2100, date(2100, 2, 28))],
)
def test_feb_29_is_celebrated_on_feb_28_in_common_years(year: int, celebrated: date) -> None:
    assert birthday_in_year(2, 29, year) == celebrated


def test_feb_29_birthday_today() -> None:
    common = datetime(2025, 2, 28, 12, 0, tzinfo=UTC)
    leap = datetime(2024, 2, 28, 12, 0, tzinfo=UTC)
    assert is_birthday_today(2, 29, "UTC", common)
    assert not is_birthday_today(2, 29, "UTC", leap)
    assert is_birthday_today(2, 29, "UTC", datetime(2024, 2, 29, 12, tzinfo=UTC))
    assert not is_birthday_today(2, 29, "UTC", datetime(2025, 3, 1, 12, tzinfo=UTC))


def test_day_past_the_month_end_moves_to_the_last_day() -> None:
    assert birthday_in_year(4, 31, 2026) == date(2026, 4, 30)


def test_unknown_time_zone_falls_back_to_utc() -> None:
    assert local_date("Mars/Olympus_Mons", INSTANT) == date(2026, 3, 14)
    assert local_date("", INSTANT) == date(2026, 3, 14)


def test_birthday_due_needs_a_birthday_campaign_and_a_known_birthday() -> None:
    birthday = campaign(trigger={"kind": "birthday"})
    la = member(birth_month=3, birth_day=14, time_zone="America/Los_Angeles")
    assert birthday_due(birthday, la, INSTANT)
    assert not birthday_due(campaign(), la, INSTANT)
    assert not birthday_due(birthday, member(), INSTANT)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date("UTC", datetime(2026, 3, 14, 12, 0))
