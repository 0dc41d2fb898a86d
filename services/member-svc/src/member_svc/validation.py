"""Field rules for member data: each normaliser returns the stored form or raises InvalidValue.

Pure functions (no I/O, time as an argument), used by the request models in schemas.py
and directly by the unit tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

NAME_MAX_LENGTH = 100
EARLIEST_BIRTHDAY = date(1900, 1, 1)
ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ATTRIBUTE_VALUE_MAX_LENGTH = 200
MAX_ATTRIBUTES = 50
EXTERNAL_ID_MAX_LENGTH = 100


class InvalidValue(ValueError):
    """A value that breaks a field rule; the message says what a caller should change."""


def normalize_email(value: str) -> str:
    """Syntax-checked email in lower case (the form stored and compared for uniqueness)."""
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidValue(f"not a valid email address: {error}") from None
    return checked.normalized.lower()


def normalize_phone(value: str) -> str:
    """A phone number in E.164 form; input must carry its country code (+<cc>...)."""
    text = value.strip()
    if not text.startswith("+"):
        raise InvalidValue("phone must be in international form, starting with + and country code")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as error:
        raise InvalidValue(f"not a phone number: {error}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("not a valid phone number for its country code")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Files of the system's zoneinfo directory that are not zones a member can live in.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules", "posix", "right"})


@cache
def _time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def validate_time_zone(value: str) -> str:
    """An IANA time zone name such as Europe/Berlin (exact spelling)."""
    if value not in _time_zone_names():
        raise InvalidValue("not an IANA time zone name (e.g. Europe/Berlin, UTC)")
    return value


def check_line(value: str) -> str:
    """Single-line text (ids, channels, attribute values): no control characters."""
    if any(not character.isprintable() for character in value):
        raise InvalidValue("must not contain control characters")
    return value


def check_free_text(value: str) -> str:
    """Multi-line text (comments): line breaks and tabs, but no other control characters."""
    if any(not character.isprintable() and character not in "\n\r\t" for character in value):
        raise InvalidValue("must not contain control characters other than line breaks")
    return value


def normalize_name(value: str) -> str:
    """A person's name, trimmed; not blank, at most NAME_MAX_LENGTH characters."""
    name = value.strip()
    if not name:
        raise InvalidValue("must not be blank")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidValue(f"at most {NAME_MAX_LENGTH} characters")
    return check_line(name)


def normalize_external_id(value: str) -> str:
    """The storefront's own id of the member: trimmed, 1..100 printable characters."""
    external_id = value.strip()
    if not external_id or len(external_id) > EXTERNAL_ID_MAX_LENGTH:
        raise InvalidValue(f"must be 1 to {EXTERNAL_ID_MAX_LENGTH} characters")
    return check_line(external_id)


def validate_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """Free-form projectable attributes: snake_case keys, short string values, bounded size."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidValue(f"at most {MAX_ATTRIBUTES} attributes")
    for key, value in attributes.items():
        if not ATTRIBUTE_KEY.match(key):
            raise InvalidValue(f"key {key!r} must match {ATTRIBUTE_KEY.pattern}")
        if len(value) > ATTRIBUTE_VALUE_MAX_LENGTH:
            raise InvalidValue(f"value of {key!r} is longer than {ATTRIBUTE_VALUE_MAX_LENGTH}")
        if any(not character.isprintable() for character in value):
            raise InvalidValue(f"value of {key!r} contains control characters")
    return dict(attributes)


def local_today(now: datetime, time_zone: str) -> date:
    """The calendar date at `now` in the member's time zone."""
    return now.astimezone(ZoneInfo(time_zone)).date()


def check_birthday(birthday: date, today: date) -> date:
    """A birthday is a past (or today's) date, not before 1900."""
    if birthday > today:
        raise InvalidValue("must not be in the future")
    if birthday < EARLIEST_BIRTHDAY:
        raise InvalidValue(f"must not be before {EARLIEST_BIRTHDAY.isoformat()}")
    return birthday
