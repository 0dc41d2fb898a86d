"""Consent per channel with history, activity and NPS feedback intake as events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from memberflow_events.payloads import MemberActivity, MemberFeedback, MemberUpdated

from tests.integration.member_svc.helpers import (
    count_rows,
    member_token,
    published_types,
    register,
    shop,
    wait_for_event,
)

pytestmark = pytest.mark.infra


async def test_consent_changes_keep_a_timestamped_history(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    before = datetime.now(UTC)
    member = await register(client, app, consents={"email": True})
    url = f"/v1/members/{member['id']}/consents"
    own = member_token(app, member["id"])

    withdrawn = await client.put(f"{url}/email", json={"granted": False}, headers=own)
    assert withdrawn.status_code == 200, withdrawn.text
    granted = await client.put(f"{url}/sms", json={"granted": True}, headers=shop(app))
    unchanged = await client.put(f"{url}/sms", json={"granted": True}, headers=shop(app))
    assert unchanged.json() == granted.json()

    body = (await client.get(url, headers=own)).json()
    assert {c["channel"]: c["granted"] for c in body["consents"]} == {"email": False, "sms": True}
    assert [(h["channel"], h["granted"], h["source"]) for h in body["history"]] == [
        ("email", True, "registration:storefront:shop"),
        ("email", False, "member"),
        ("sms", True, "storefront:shop"),
    ]
    stamps = [datetime.fromisoformat(h["changed_at"]) for h in body["history"]]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] <= datetime.now(UTC)
    email_state = next(c for c in body["consents"] if c["channel"] == "email")
    assert email_state["updated_at"] == body["history"][1]["changed_at"]

    profile = (await client.get(f"/v1/members/{member['id']}", headers=own)).json()
    assert profile["consents"] == {"email": False, "sms": True}
    assert await published_types(app) == ["member.registered", "member.updated", "member.updated"]
    event = await wait_for_event(topic_prefix, member["id"], "member.updated")
    # The first change carries the complete consent map as it was after that change.
    assert event.payload_as(MemberUpdated).consents == {"email": False}


async def test_consent_input_is_validated(client: httpx.AsyncClient, app: FastAPI) -> None:
    member = await register(client, app)
    url = f"/v1/members/{member['id']}/consents"
    fax = await client.put(f"{url}/fax", json={"granted": True}, headers=shop(app))
    assert fax.status_code == 422
    assert fax.json()["errors"][0]["field"] == "path.channel"
    maybe = await client.put(f"{url}/email", json={"granted": "maybe"}, headers=shop(app))
    assert maybe.status_code == 422
    assert maybe.json()["errors"][0]["field"] == "granted"
    assert await count_rows(app, "consent_changes") == 0


async def test_activity_is_logged_and_emitted(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    member = await register(client, app)
    url = f"/v1/members/{member['id']}/activities"
    happened = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    response = await client.post(
        url,
        json={
            "kind": "visit",
            "channel": "store",
            "store_id": "berlin-1",
            "occurred_at": happened.isoformat(),
        },
        headers=shop(app),
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    login = await client.post(url, json={"kind": "login"}, headers=member_token(app, member["id"]))
    assert login.status_code == 202

    event = await wait_for_event(topic_prefix, member["id"], "member.activity")
    assert event.payload_as(MemberActivity) == MemberActivity(
        kind="visit", channel="store", store_id="berlin-1"
    )
    assert event.occurred_at == happened
    assert await count_rows(app, "activities") == 2


async def test_activity_input_is_validated(client: httpx.AsyncClient, app: FastAPI) -> None:
    member = await register(client, app)
    url = f"/v1/members/{member['id']}/activities"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cases = [
        ({"kind": "teleport"}, "kind"),
        ({"kind": "Login"}, "kind"),
        ({"kind": "visit", "occurred_at": future}, "occurred_at"),
        ({"kind": "visit", "occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),
        ({"kind": "visit", "store_id": ""}, "store_id"),
        ({"kind": "visit", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        response = await client.post(url, json=body, headers=shop(app))
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field, body
    assert await count_rows(app, "activities") == 0
    assert await published_types(app) == ["member.registered"]


async def test_feedback_is_logged_and_emitted(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    member = await register(client, app)
    url = f"/v1/members/{member['id']}/feedback"
    own = member_token(app, member["id"])
    response = await client.post(url, json={"nps_score": 9, "comment": " Great! "}, headers=own)
    assert response.status_code == 202, response.text
    event = await wait_for_event(topic_prefix, member["id"], "member.feedback")
    assert event.payload_as(MemberFeedback) == MemberFeedback(nps_score=9, comment="Great!")

    for body, field in [
        ({"nps_score": 11}, "nps_score"),
        ({"nps_score": -1}, "nps_score"),
        ({"nps_score": "9"}, "nps_score"),
        ({"nps_score": 7.5}, "nps_score"),
        ({}, "nps_score"),
        ({"nps_score": 5, "comment": "x" * 2001}, "comment"),
    ]:
        bad = await client.post(url, json=body, headers=own)
        assert bad.status_code == 422, body
        assert bad.json()["errors"][0]["field"] == field, body
    assert await count_rows(app, "feedback") == 1


async def test_an_intake_retried_with_its_idempotency_key_is_recorded_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = await register(client, app)
    base = f"/v1/members/{member['id']}"
    headers = {**shop(app), "Idempotency-Key": "visit-1"}
    visits = [
        await client.post(f"{base}/activities", json={"kind": "visit"}, headers=headers)
        for _ in range(3)
    ]
    assert {r.status_code for r in visits} == {202}
    assert len({r.json()["id"] for r in visits}) == 1
    answers = [
        await client.post(f"{base}/feedback", json={"nps_score": 8}, headers=headers)
        for _ in range(2)
    ]
    assert len({r.json()["id"] for r in answers}) == 1
    reused = await client.post(f"{base}/feedback", json={"nps_score": 2}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"
    assert (await count_rows(app, "activities"), await count_rows(app, "feedback")) == (1, 1)
    assert await published_types(app) == ["member.registered", "member.activity", "member.feedback"]
