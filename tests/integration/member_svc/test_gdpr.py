"""GDPR export (everything held) and erasure (personal data gone, the id stays valid)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.integration.member_svc.helpers import (
    PERSONAL,
    member_token,
    ops,
    post_registration,
    published_types,
    register,
    registration,
    shop,
    wait_for_event,
)

pytestmark = pytest.mark.infra


async def _populate(client: httpx.AsyncClient, app: FastAPI) -> tuple[dict[str, str], str]:
    member = await register(
        client, app, **PERSONAL, consents={"email": True}, attributes={"a": "b"}
    )
    own = member_token(app, member["id"])
    base = f"/v1/members/{member['id']}"
    await client.put(f"{base}/consents/push", json={"granted": True}, headers=own)
    await client.post(f"{base}/activities", json={"kind": "review", "channel": "app"}, headers=own)
    keyed = {**own, "Idempotency-Key": "nps-1"}
    answer = {"nps_score": 3, "comment": "I am Ada"}
    await client.post(f"{base}/feedback", json=answer, headers=keyed)
    friend = await register(client, app, referral_code=member["referral_code"])
    return member, friend["id"]


async def test_export_contains_everything_held(client: httpx.AsyncClient, app: FastAPI) -> None:
    member, friend_id = await _populate(client, app)
    response = await client.get(
        f"/v1/members/{member['id']}/export", headers=member_token(app, member["id"])
    )
    assert response.status_code == 200, response.text
    export = response.json()
    profile = export["member"]
    assert (profile["email"], profile["phone"], profile["birthday"]) == (
        "ada.lovelace@example.com",
        "+442079460958",
        "1990-12-10",
    )
    assert (profile["first_name"], profile["last_name"]) == ("Ada", "Lovelace")
    assert profile["attributes"] == {"a": "b"}
    assert [(h["channel"], h["granted"]) for h in export["consents"]["history"]] == [
        ("email", True),
        ("push", True),
    ]
    assert export["referrals"] == {
        "referral_code": member["referral_code"],
        "referred_by": None,
        "referred_members": [friend_id],
    }
    assert [(a["kind"], a["channel"]) for a in export["activities"]] == [("review", "app")]
    assert [(f["nps_score"], f["comment"]) for f in export["feedback"]] == [(3, "I am Ada")]


async def test_erase_removes_personal_data_and_emits_member_erased(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    member, friend_id = await _populate(client, app)
    url = f"/v1/members/{member['id']}"
    erased = await client.delete(url, headers=ops(app))
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["id"] == member["id"]
    assert body["status"] == "erased"
    for field in ("email", "phone", "first_name", "last_name", "birthday", "external_id"):
        assert body[field] is None, field
    assert body["attributes"] == {}
    assert body["consents"] == {}

    event = await wait_for_event(topic_prefix, member["id"], "member.erased")
    assert event.member_id is not None
    assert str(event.member_id) == member["id"]

    async with app.state.runtime.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT * FROM members WHERE id = :id"), {"id": member["id"]})
        ).one()
        held = {k: v for k, v in row._mapping.items() if v not in (None, {})}
        assert set(held) == {"id", "status", "time_zone", "created_at", "updated_at", "erased_at"}
        for table in ("consent_changes", "member_consents"):
            count = await conn.scalar(
                text(f"SELECT count(*) FROM {table} WHERE member_id = :id"), {"id": member["id"]}
            )
            assert count == 0, table
        comments = await conn.scalar(
            text("SELECT count(comment) FROM feedback WHERE member_id = :id"), {"id": member["id"]}
        )
        assert comments == 0
        stored = await conn.scalar(
            text("SELECT count(*) FROM idempotency_keys WHERE body ->> 'member_id' = :id"),
            {"id": member["id"]},
        )
        assert stored == 0
        dump = await conn.scalar(text("SELECT string_agg(t::text, ' ') FROM members t"))
        assert "lovelace" not in dump.lower()

    read = await client.get(url, headers=shop(app))
    assert read.status_code == 200
    assert read.json() == body
    export = (await client.get(f"{url}/export", headers=ops(app))).json()
    assert export["feedback"][0]["comment"] is None
    assert export["consents"]["history"] == []
    assert export["referrals"]["referred_members"] == [friend_id]


async def test_erase_is_idempotent_and_final(client: httpx.AsyncClient, app: FastAPI) -> None:
    member = await register(client, app, **PERSONAL)
    url = f"/v1/members/{member['id']}"
    own = member_token(app, member["id"])
    first = await client.delete(url, headers=own)
    again = await client.delete(url, headers=own)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert (await published_types(app)).count("member.erased") == 1

    for response in (
        await client.patch(url, json={"first_name": "Back"}, headers=own),
        await client.put(f"{url}/consents/email", json={"granted": True}, headers=own),
        await client.post(f"{url}/activities", json={"kind": "login"}, headers=own),
        await client.post(f"{url}/feedback", json={"nps_score": 10}, headers=own),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/member-erased")
    # The email is free again: a new registration makes a new member.
    again_registered = await post_registration(client, app, registration(email=PERSONAL["email"]))
    assert again_registered.status_code == 201
    assert again_registered.json()["id"] != member["id"]


async def test_only_ops_or_the_member_may_erase(client: httpx.AsyncClient, app: FastAPI) -> None:
    member = await register(client, app)
    response = await client.delete(f"/v1/members/{member['id']}", headers=shop(app))
    assert response.status_code == 403
    assert (await client.get(f"/v1/members/{member['id']}", headers=shop(app))).json()[
        "status"
    ] == "active"
