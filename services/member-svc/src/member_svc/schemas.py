"""Request and response bodies of the member API.

Request models reject unknown fields and normalise values with the rules of validation.py,
so a bad value is a 422 naming its field before any database work starts. Rules that need
the clock (birthday not in the future) are checked by the routes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from memberflow_events.payloads import Channel
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from member_svc.domain import normalize_referral_code
from member_svc.validation import (
    check_free_text,
    check_line,
    normalize_email,
    normalize_external_id,
    normalize_name,
    normalize_phone,
    validate_attributes,
    validate_time_zone,
)


def _iso_date_text(value: Any) -> Any:
    # pydantic would read a number as a Unix timestamp; a birthday must be written as a date.
    if not isinstance(value, str | date):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(normalize_email)]
Phone = Annotated[str, Field(max_length=40), AfterValidator(normalize_phone)]
Name = Annotated[str, Field(max_length=200), AfterValidator(normalize_name)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(validate_time_zone)]
Birthday = Annotated[date, BeforeValidator(_iso_date_text)]
Attributes = Annotated[dict[str, str], AfterValidator(validate_attributes)]
ExternalId = Annotated[str, Field(max_length=200), AfterValidator(normalize_external_id)]
ReferralCode = Annotated[str, Field(max_length=40), AfterValidator(normalize_referral_code)]
ActivityChannel = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(check_line)]
StoreId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(check_line)]
Comment = Annotated[str, Field(max_length=2000), AfterValidator(check_free_text)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Request):
    external_id: ExternalId | None = Field(
        default=None,
        description="the storefront's id of this member; registration is idempotent on it",
    )
    email: Email | None = None
    phone: Phone | None = Field(default=None, description="E.164, e.g. +4915123456789")
    first_name: Name | None = None
    last_name: Name | None = None
    birthday: Birthday | None = None
    time_zone: TimeZone = "UTC"
    attributes: Attributes = Field(default_factory=dict)
    consents: dict[Channel, StrictBool] = Field(default_factory=dict)
    referral_code: ReferralCode | None = Field(
        default=None, description="code of the member who referred this one"
    )
    joined_at: AwareDatetime | None = Field(
        default=None,
        description=(
            "ops only, for importing an existing programme: when the member joined "
            "(not in the future); defaults to now"
        ),
    )


class UpdateRequest(_Request):
    """Only the fields present change; null removes an optional field."""

    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    birthday: Birthday | None = None
    time_zone: TimeZone | None = None
    attributes: Attributes | None = None

    @field_validator("time_zone", "attributes")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values the request gave: these two may be changed, never removed.
        if value is None:
            raise ValueError("must not be null")
        return value

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class ConsentRequest(_Request):
    granted: StrictBool


class ActivityRequest(_Request):
    kind: Annotated[str, Field(pattern=r"^[a-z_]{2,32}$")]
    channel: ActivityChannel | None = None
    store_id: StoreId | None = None
    occurred_at: AwareDatetime | None = Field(
        default=None, description="when it happened (RFC 3339 with offset); default: now"
    )


class FeedbackRequest(_Request):
    nps_score: Annotated[StrictInt, Field(ge=0, le=10)]
    comment: Comment | None = None


# ---------- responses ----------


class MemberView(BaseModel):
    id: UUID
    status: Literal["active", "erased"]
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    birthday: date | None
    time_zone: str
    attributes: dict[str, str]
    consents: dict[Channel, bool]
    referral_code: str | None
    referred_by: UUID | None
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None


class MemberPage(BaseModel):
    items: list[MemberView]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


class ConsentView(BaseModel):
    channel: Channel
    granted: bool
    updated_at: datetime


class ConsentChangeView(BaseModel):
    channel: Channel
    granted: bool
    source: str
    changed_at: datetime


class ConsentsView(BaseModel):
    member_id: UUID
    consents: list[ConsentView]
    history: list[ConsentChangeView]


class ActivityView(BaseModel):
    id: UUID
    kind: str
    channel: str | None
    store_id: str | None
    occurred_at: datetime
    received_at: datetime


class FeedbackView(BaseModel):
    id: UUID
    nps_score: int
    comment: str | None
    received_at: datetime


class Accepted(BaseModel):
    id: UUID
    member_id: UUID
    status: Literal["accepted"] = "accepted"


class ReferralsView(BaseModel):
    referral_code: str | None
    referred_by: UUID | None
    referred_members: list[UUID]


class ExportView(BaseModel):
    """Everything member-svc holds on a member (GDPR art. 15 / 20)."""

    exported_at: datetime
    member: MemberView
    consents: ConsentsView
    referrals: ReferralsView
    activities: list[ActivityView]
    feedback: list[FeedbackView]


class ReferrerView(BaseModel):
    member_id: UUID
    referral_code: str
