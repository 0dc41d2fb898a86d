"""Member rules: registration, referral codes, updates, consent, intake checks, erasure."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from member_svc import domain
from member_svc.domain import (
    REFERRAL_ALPHABET,
    ConsentChange,
    Member,
    MemberErasedError,
    Registration,
)
from member_svc.validation import InvalidValue
from memberflow_events.payloads import MemberUpdated

from tests.support import without_ids

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)

ADA = Registration(
    external_id="cust-1",
    email="ada@example.com",
    phone="+442079460958",
    first_name="Ada",
    last_name="Lovelace",
    birthday=date(1990, 12, 10),
    time_zone="Europe/London",
    attributes={"store": "london-1"},
    consents={"email": True, "sms": False},
)


def member(registration: Registration = ADA, referred_by: UUID | None = None) -> Member:
    return domain.register(
        registration, member_id=uuid4(), referral_code="K7M3PQ9X", referred_by=referred_by, now=NOW
    )


# ---------- registration ----------


def test_register_makes_an_active_member_with_everything_asked_for() -> None:
    referrer = uuid4()
    ada = member(referred_by=referrer)
    assert ada.status == "active"
    assert (ada.email, ada.phone, ada.birthday) == (ADA.email, ADA.phone, ADA.birthday)
    assert ada.referred_by == referrer
    assert ada.referral_code == "K7M3PQ9X"
    assert ada.created_at == ada.updated_at == NOW
    assert ada.registration_fingerprint == domain.registration_fingerprint(ADA)


def test_a_member_cannot_refer_itself() -> None:
    member_id = uuid4()
    with pytest.raises(InvalidValue, match="refer itself"):
        domain.register(
            ADA, member_id=member_id, referral_code="K7M3PQ9X", referred_by=member_id, now=NOW
        )


def test_the_fingerprint_tells_a_retry_from_a_different_registration() -> None:
    assert domain.registration_fingerprint(ADA) == domain.registration_fingerprint(
        dataclasses.replace(ADA, consents={"sms": False, "email": True})
    )
    others = [
        dataclasses.replace(ADA, first_name="Augusta"),
        dataclasses.replace(ADA, birthday=date(1990, 12, 11)),
        dataclasses.replace(ADA, consents={}),
        dataclasses.replace(ADA, referral_code="K7M3PQ9X"),
    ]
    for other in others:
        assert domain.registration_fingerprint(other) != domain.registration_fingerprint(ADA)


def test_member_registered_carries_no_personal_data() -> None:
    ada = member()
    payload = domain.registered_payload(ada, ADA.consents)
    assert payload.model_dump() == {
        "external_id": "cust-1",
        "birth_month": 12,
        "birth_day": 10,
        "time_zone": "Europe/London",
        "consents": {"email": True, "sms": False},
        "referred_by": None,
        "attributes": {"store": "london-1"},
    }
    text = payload.model_dump_json()
    for personal in ("ada@example.com", "+442079460958", "Ada", "Lovelace", "1990"):
        assert personal not in text


def test_registration_consents_start_the_history() -> None:
    history = domain.initial_consents(ADA, "registration:storefront:shop", NOW)
    assert history == [
        ConsentChange("email", True, "registration:storefront:shop", NOW),
        ConsentChange("sms", False, "registration:storefront:shop", NOW),
    ]


# ---------- referral codes ----------


def test_referral_codes_use_an_unambiguous_alphabet() -> None:
    rng = random.Random(42)
    codes = {domain.generate_referral_code(rng.choice) for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == 8
        assert set(code) <= set(REFERRAL_ALPHABET)
        assert not set(code) & set("01ILOU")
        assert domain.normalize_referral_code(code) == code


@pytest.mark.parametrize("typed", ["k7m3pq9x", " K7M3-PQ9X ", "k7m3 pq9x"])
def test_referral_codes_are_read_case_insensitively(typed: str) -> None:
    assert domain.normalize_referral_code(typed) == "K7M3PQ9X"


@pytest.mark.parametrize("typed", ["", "K7M3PQ9", "K7M3PQ9XY", "K7M3PQ0X", "K7M3PQIX", "K7M3PQ!X"])
def test_malformed_referral_codes_are_refused(typed: str) -> None:
    with pytest.raises(InvalidValue, match="8 characters"):
        domain.normalize_referral_code(typed)


# ---------- updates ----------


def test_an_update_changes_only_what_differs() -> None:
    ada = member()
    assert domain.apply_update(ada, {"first_name": "Ada"}, LATER) is ada
    renamed = domain.apply_update(ada, {"first_name": "Augusta", "phone": None}, LATER)
    assert (renamed.first_name, renamed.phone, renamed.updated_at) == ("Augusta", None, LATER)
    assert renamed.email == ada.email
    assert domain.updated_payload(ada, renamed) is None


def test_member_updated_names_only_changed_projectable_fields() -> None:
    ada = member()
    moved = domain.apply_update(
        ada, {"time_zone": "Asia/Tokyo", "birthday": date(1991, 3, 4), "email": "a@b.io"}, LATER
    )
    assert domain.updated_payload(ada, moved) == MemberUpdated(
        birth_month=3, birth_day=4, time_zone="Asia/Tokyo"
    )
    tagged = domain.apply_update(ada, {"attributes": {"store": "paris-2"}}, LATER)
    assert domain.updated_payload(ada, tagged) == MemberUpdated(attributes={"store": "paris-2"})


def test_unknown_fields_cannot_be_updated() -> None:
    with pytest.raises(ValueError, match="referral_code"):
        domain.apply_update(member(), {"referral_code": "X"}, LATER)


def test_an_erased_member_cannot_be_updated() -> None:
    erased = domain.erase(member(), LATER)
    with pytest.raises(MemberErasedError):
        domain.apply_update(erased, {"first_name": "Back"}, LATER)
    with pytest.raises(MemberErasedError):
        domain.ensure_active(erased)


# ---------- consent ----------


def test_a_consent_change_is_recorded_with_time_and_source() -> None:
    change = domain.change_consent({"email": True}, "email", False, "member", LATER)
    assert change == ConsentChange("email", False, "member", LATER)
    assert domain.consents_after({"email": True, "sms": True}, change) == {
        "email": False,
        "sms": True,
    }


def test_setting_a_consent_to_its_current_value_changes_nothing() -> None:
    assert domain.change_consent({"email": True}, "email", True, "member", LATER) is None
    first = domain.change_consent({}, "push", False, "member", LATER)
    assert first == ConsentChange("push", False, "member", LATER)


def test_member_updated_for_consent_carries_the_whole_map() -> None:
    payload = domain.consent_updated_payload({"email": False, "sms": True})
    assert payload == MemberUpdated(consents={"email": False, "sms": True})


def test_the_consent_source_names_the_acting_system_not_the_member() -> None:
    assert domain.consent_source(frozenset({"member:self"}), str(uuid4())) == "member"
    assert domain.consent_source(frozenset({"storefront"}), "shop") == "storefront:shop"
    assert domain.consent_source(frozenset({"ops", "storefront"}), "alice") == "ops:alice"


# ---------- intake ----------


def test_activity_time_may_not_lie_in_the_future_beyond_clock_skew() -> None:
    skew = timedelta(minutes=5)
    assert domain.check_occurred_at(NOW - timedelta(days=3), NOW, skew) == NOW - timedelta(days=3)
    assert domain.check_occurred_at(NOW + skew, NOW, skew) == NOW + skew
    with pytest.raises(InvalidValue, match="future"):
        domain.check_occurred_at(NOW + skew + timedelta(seconds=1), NOW, skew)
    with pytest.raises(InvalidValue, match="offset"):
        domain.check_occurred_at(datetime(2026, 1, 1), NOW, skew)


def test_activity_kinds_come_from_configuration() -> None:
    assert domain.check_activity_kind("visit", ("login", "visit")) == "visit"
    with pytest.raises(InvalidValue, match="one of"):
        domain.check_activity_kind("teleport", ("login", "visit"))


# ---------- erasure ----------


def test_erase_leaves_no_personal_data() -> None:
    ada = member(referred_by=uuid4())
    assert set(domain.personal_data(ada)) == {*domain.PERSONAL_FIELDS, "attributes"}
    erased = domain.erase(ada, LATER)
    assert domain.personal_data(erased) == {}
    assert (erased.id, erased.referred_by, erased.created_at) == (ada.id, ada.referred_by, NOW)
    assert (erased.status, erased.erased_at, erased.updated_at) == ("erased", LATER, LATER)
    assert erased.time_zone == "UTC"
    text = without_ids(repr(erased))
    for personal in ("ada@example.com", "+442079460958", "Ada", "Lovelace", "1990", "cust-1"):
        assert personal not in text


def test_erasing_twice_changes_nothing() -> None:
    erased = domain.erase(member(), LATER)
    assert domain.erase(erased, LATER + timedelta(days=1)) is erased
