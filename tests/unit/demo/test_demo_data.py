"""Everything the demo loader sends member-svc passes member-svc's own request models."""

from __future__ import annotations

from datetime import UTC, datetime

from member_svc.schemas import ActivityRequest, FeedbackRequest, RegisterRequest

from demo.generate import generate

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_generated_requests_are_accepted_by_member_svc_models() -> None:
    data = generate(seed=7, members=400, days=270, now=NOW)
    for member in data.members:
        request = RegisterRequest.model_validate(member.registration)
        assert request.joined_at is not None
        assert request.joined_at <= NOW
    for _, body in data.activities:
        ActivityRequest.model_validate(body)
    for _, body in data.feedback:
        FeedbackRequest.model_validate(body)
    assert data.activities
    assert data.feedback
    assert data.orders


def test_generation_is_deterministic() -> None:
    first = generate(seed=7, members=50, days=90, now=NOW)
    again = generate(seed=7, members=50, days=90, now=NOW)
    assert [m.registration for m in first.members] == [m.registration for m in again.members]
    assert [o.payload for o in first.orders] == [o.payload for o in again.orders]
