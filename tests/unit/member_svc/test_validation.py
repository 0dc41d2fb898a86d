"""Field rules: email, E.164 phone, birthday, time zone, names, attributes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from member_svc.validation import (
    InvalidValue,
    check_birthday,
    check_free_text,
    check_line,
    local_today,
    normalize_email,
    normalize_external_id,
    normalize_name,
    normalize_phone,
    validate_attributes,
    validate_time_zone,
)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
        ("  ada@example.com ", "ada@example.com"),
        ("ADA+loyalty@sub.example.org", "ada+loyalty@sub.example.org"),
    ],
)
def test_emails_are_stored_in_lower_case(raw: str, stored: str) -> None:
    assert normalize_email(raw) == stored


@pytest.mark.parametrize("raw", ["", "ada", "ada@", "@example.com", "a@b", "a b@example.com"])
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue, match="not a valid email"):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+49 151 23456789", "+4915123456789"),
        ("+44 (20) 7946-0958", "+442079460958"),
        ("+1 650 253 0000", "+16502530000"),
    ],
)
def test_phones_are_stored_in_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("015123456789", "international form"),
        ("+49 1", "too short"),
        ("+999 123456", "not a phone number"),
        ("+abc", "not a phone number"),
        ("+1 200 555 0100", "not a valid phone number for its country code"),
        ("+49 30 1", "not a valid phone number for its country code"),
    ],
)
def test_phones_without_a_valid_country_code_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        normalize_phone(raw)


def test_birthday_must_be_in_the_past_and_after_1900() -> None:
    today = date(2026, 11, 23)
    assert check_birthday(date(1990, 12, 10), today) == date(1990, 12, 10)
    assert check_birthday(today, today) == today
    assert check_birthday(date(1900, 1, 1), today) == date(1900, 1, 1)
    with pytest.raises(InvalidValue, match="future"):
        check_birthday(date(2026, 11, 24), today)
    with pytest.raises(InvalidValue, match="before 1900"):
        check_birthday(date(1899, 12, 31), today)


def test_today_depends_on_the_members_time_zone() -> None:
    # 23:30 UTC is already the next day in Auckland and still the same day in New York.
    now = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert local_today(now, "Pacific/Auckland") == date(2026, 11, 24)
    assert local_today(now, "America/New_York") == date(2026, 11, 23)
    assert local_today(now, "UTC") == date(2026, 11, 23)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"])
def test_iana_time_zones_are_accepted(name: str) -> None:
    assert validate_time_zone(name) == name


@pytest.mark.parametrize(
    "name", ["", "europe/berlin", "Mars/Olympus", "CEST", "+02:00", "localtime", "Factory"]
)
def test_other_time_zone_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue, match="IANA"):
        validate_time_zone(name)


def test_names_are_trimmed_and_bounded() -> None:
    assert normalize_name("  Zoë O'Brien-Łukasz ") == "Zoë O'Brien-Łukasz"
    assert normalize_name("x" * 100) == "x" * 100
    with pytest.raises(InvalidValue, match="blank"):
        normalize_name("   ")
    with pytest.raises(InvalidValue, match="at most 100"):
        normalize_name("x" * 101)
    with pytest.raises(InvalidValue, match="control"):
        normalize_name("Ada\x00")


def test_external_ids_are_trimmed_and_bounded() -> None:
    assert normalize_external_id(" cust-42 ") == "cust-42"
    for bad in ("", "  ", "x" * 101, "a\nb"):
        with pytest.raises(InvalidValue):
            normalize_external_id(bad)


def test_attributes_have_snake_case_keys_and_short_values() -> None:
    assert validate_attributes({"favourite_store": "berlin-1"}) == {"favourite_store": "berlin-1"}
    with pytest.raises(InvalidValue, match="key 'Bad Key'"):
        validate_attributes({"Bad Key": "v"})
    with pytest.raises(InvalidValue, match="longer than 200"):
        validate_attributes({"note": "x" * 201})
    with pytest.raises(InvalidValue, match="at most 50"):
        validate_attributes({f"k{i}": "v" for i in range(51)})


def test_single_line_text_has_no_control_characters() -> None:
    assert check_line("berlin-1 Zoë") == "berlin-1 Zoë"
    for bad in ("a\x00b", "a\nb", "\x1b[31m"):
        with pytest.raises(InvalidValue, match="control"):
            check_line(bad)


def test_free_text_keeps_line_breaks_but_no_other_control_characters() -> None:
    assert check_free_text("Great!\r\nWould come again.\t10/10") == (
        "Great!\r\nWould come again.\t10/10"
    )
    with pytest.raises(InvalidValue, match="control"):
        check_free_text("nul\x00byte")
