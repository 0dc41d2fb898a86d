"""Member rules: registration, profile updates, consent, referral codes, intake, erasure.

Plain values in, plain values out; time comes in as an argument. Field-level rules
(email, phone, time zone, ...) are in validation.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args
from uuid import UUID

from memberflow_events.payloads import (
    Channel,
    MemberActivity,
    MemberFeedback,
    MemberRegistered,
    MemberUpdated,
)

from member_svc.validation import InvalidValue

CHANNELS: tuple[Channel, ...] = get_args(Channel)
MemberStatus = Literal["active", "erased"]

# Crockford-style alphabet without 0/O, 1/I/L and U: codes are read aloud and typed.
REFERRAL_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERRAL_CODE_LENGTH = 8
_REFERRAL_CODE = re.compile(rf"^[{REFERRAL_ALPHABET}]{{{REFERRAL_CODE_LENGTH}}}$")

# Fields holding personal data; erase() clears every one of them.
PERSONAL_FIELDS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "referral_code",
    "registration_fingerprint",
)
# Profile fields a caller may change with an update.
UPDATABLE_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "time_zone",
    "attributes",
)


class MemberErasedError(Exception):
    """The member's personal data was erased; it can no longer be changed or engaged."""

    def __init__(self, member_id: UUID) -> None:
        super().__init__(f"member {member_id} is erased")
        self.member_id = member_id


@dataclass(frozen=True)
class Registration:
    """A validated registration request (personal and projectable data, initial consents)."""

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birthday: date | None = None
    time_zone: str = "UTC"
    attributes: Mapping[str, str] = field(default_factory=dict)
    consents: Mapping[Channel, bool] = field(default_factory=dict)
    referral_code: str | None = None


@dataclass(frozen=True)
class Member:
    id: UUID
    status: MemberStatus
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    birthday: date | None
    time_zone: str
    attributes: Mapping[str, str]
    referral_code: str | None
    referred_by: UUID | None
    registration_fingerprint: str | None
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None = None

    @property
    def is_erased(self) -> bool:
        return self.status == "erased"


@dataclass(frozen=True)
class ConsentChange:
    """One entry of a member's consent history."""

    channel: Channel
    granted: bool
    source: str
    changed_at: datetime


@dataclass(frozen=True)
class Activity:
    id: UUID
    member_id: UUID
    kind: str
    channel: str | None
    store_id: str | None
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class Feedback:
    id: UUID
    member_id: UUID
    nps_score: int
    comment: str | None
    received_at: datetime


# ---------- registration ----------


def registration_fingerprint(registration: Registration) -> str:
    """Stable hash of what was asked for, to tell a retried registration from a different one."""
    document = {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in dataclasses.asdict(registration).items()
    }
    canonical = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def register(
    registration: Registration,
    *,
    member_id: UUID,
    referral_code: str,
    referred_by: UUID | None,
    now: datetime,
) -> Member:
    """A new active member from a validated registration."""
    if referred_by == member_id:
        raise InvalidValue("a member cannot refer itself")
    return Member(
        id=member_id,
        status="active",
        external_id=registration.external_id,
        email=registration.email,
        phone=registration.phone,
        first_name=registration.first_name,
        last_name=registration.last_name,
        birthday=registration.birthday,
        time_zone=registration.time_zone,
        attributes=dict(registration.attributes),
        referral_code=referral_code,
        referred_by=referred_by,
        registration_fingerprint=registration_fingerprint(registration),
        created_at=now,
        updated_at=now,
    )


def initial_consents(registration: Registration, source: str, now: datetime) -> list[ConsentChange]:
    """The consent history a registration starts with, one entry per channel it named."""
    return [
        ConsentChange(channel=channel, granted=granted, source=source, changed_at=now)
        for channel, granted in sorted(registration.consents.items())
    ]


def registered_payload(member: Member, consents: Mapping[Channel, bool]) -> MemberRegistered:
    """member.registered carries projectable data only: no name, email or phone."""
    return MemberRegistered(
        external_id=member.external_id,
        birth_month=member.birthday.month if member.birthday else None,
        birth_day=member.birthday.day if member.birthday else None,
        time_zone=member.time_zone,
        consents=dict(consents),
        referred_by=member.referred_by,
        attributes=dict(member.attributes),
    )


# ---------- referral codes ----------


def generate_referral_code(choose: Callable[[str], str] = secrets.choice) -> str:
    """A random, unguessable code (30^8 ≈ 6.6e11 possibilities) in the referral alphabet."""
    return "".join(choose(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def normalize_referral_code(value: str) -> str:
    """Codes are case-insensitive and may be typed with spaces or dashes."""
    code = value.strip().upper().replace("-", "").replace(" ", "")
    if not _REFERRAL_CODE.match(code):
        raise InvalidValue(
            f"a referral code is {REFERRAL_CODE_LENGTH} characters of {REFERRAL_ALPHABET}"
        )
    return code


# ---------- updates ----------


def ensure_active(member: Member) -> None:
    if member.is_erased:
        raise MemberErasedError(member.id)


def apply_update(member: Member, changes: Mapping[str, Any], now: datetime) -> Member:
    """The member with validated profile changes applied; unknown fields are a bug."""
    ensure_active(member)
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    changed = {name: value for name, value in changes.items() if getattr(member, name) != value}
    if not changed:
        return member
    return dataclasses.replace(member, **changed, updated_at=now)


def updated_payload(before: Member, after: Member) -> MemberUpdated | None:
    """member.updated with the projectable fields that changed, or None if none did.

    A removed birthday cannot be expressed (absent means unchanged in MemberUpdated), so
    consumers keep the old birth month/day until the member sets a new one or is erased.
    """
    fields: dict[str, Any] = {}
    if after.birthday != before.birthday and after.birthday is not None:
        fields["birth_month"] = after.birthday.month
        fields["birth_day"] = after.birthday.day
    if after.time_zone != before.time_zone:
        fields["time_zone"] = after.time_zone
    if dict(after.attributes) != dict(before.attributes):
        fields["attributes"] = dict(after.attributes)
    return MemberUpdated(**fields) if fields else None


# ---------- consent ----------


def change_consent(
    current: Mapping[Channel, bool], channel: Channel, granted: bool, source: str, now: datetime
) -> ConsentChange | None:
    """The history entry for setting one channel's consent, or None when nothing changes."""
    if current.get(channel) is granted:
        return None
    return ConsentChange(channel=channel, granted=granted, source=source, changed_at=now)


def consents_after(current: Mapping[Channel, bool], change: ConsentChange) -> dict[Channel, bool]:
    return {**current, change.channel: change.granted}


def consent_updated_payload(consents: Mapping[Channel, bool]) -> MemberUpdated:
    """member.updated for a consent change: the member's complete consent map."""
    return MemberUpdated(consents=dict(consents))


def consent_source(scopes: frozenset[str], subject: str) -> str:
    """Who changed a consent, for the history: the member itself or the acting system."""
    if "ops" in scopes:
        return f"ops:{subject}"
    if "storefront" in scopes:
        return f"storefront:{subject}"
    return "member"


# ---------- activity and feedback intake ----------


def check_occurred_at(occurred_at: datetime, now: datetime, tolerance: timedelta) -> datetime:
    """An activity happened in the past; `tolerance` absorbs clock skew between systems."""
    if occurred_at.tzinfo is None:
        raise InvalidValue("must carry a time zone offset")
    if occurred_at > now + tolerance:
        raise InvalidValue("must not be in the future")
    return occurred_at


def check_activity_kind(kind: str, allowed: Sequence[str]) -> str:
    if kind not in allowed:
        raise InvalidValue(f"must be one of {sorted(allowed)}")
    return kind


def activity_payload(activity: Activity) -> MemberActivity:
    return MemberActivity(kind=activity.kind, channel=activity.channel, store_id=activity.store_id)


def feedback_payload(feedback: Feedback) -> MemberFeedback:
    return MemberFeedback(nps_score=feedback.nps_score, comment=feedback.comment)


# ---------- erasure ----------


def erase(member: Member, now: datetime) -> Member:
    """The member with every personal field removed; the id stays valid for ledgers."""
    if member.is_erased:
        return member
    cleared: dict[str, Any] = dict.fromkeys(PERSONAL_FIELDS)
    return dataclasses.replace(
        member,
        **cleared,
        status="erased",
        time_zone="UTC",
        attributes={},
        updated_at=now,
        erased_at=now,
    )


def personal_data(member: Member) -> dict[str, Any]:
    """The personal data a member record still holds (empty after erase)."""
    held: dict[str, Any] = {
        name: getattr(member, name) for name in PERSONAL_FIELDS if getattr(member, name) is not None
    }
    if member.attributes:
        held["attributes"] = dict(member.attributes)
    return held
