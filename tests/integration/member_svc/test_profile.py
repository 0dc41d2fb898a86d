"""Reading, updating, listing and searching members."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from memberflow_events.payloads import MemberUpdated

from tests.integration.member_svc.helpers import (
    PERSONAL,
    count_rows,
    published_types,
    register,
    shop,
    wait_for_event,
)

pytestmark = pytest.mark.infra


async def test_update_changes_fields_and_emits_only_projectable_changes(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    member = await register(client, app, **PERSONAL)
    url = f"/v1/members/{member['id']}"
    renamed = await client.patch(url, json={"first_name": " Augusta "}, headers=shop(app))
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["first_name"] == "Augusta"
    assert await published_types(app) == ["member.registered"]

    moved = await client.patch(
        url,
        json={"time_zone": "America/New_York", "birthday": "1991-03-04", "phone": None},
        headers=shop(app),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["phone"] is None
    assert moved.json()["email"] == "ada.lovelace@example.com"
    event = await wait_for_event(topic_prefix, member["id"], "member.updated")
    assert event.payload_as(MemberUpdated).model_dump(exclude_none=True) == {
        "birth_month": 3,
        "birth_day": 4,
        "time_zone": "America/New_York",
    }
    read = await client.get(url, headers=shop(app))
    assert read.json() == moved.json()


async def test_update_validation_and_conflicts_write_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    first = await register(client, app, email="first@example.com")
    second = await register(client, app)
    url = f"/v1/members/{second['id']}"
    cases = [
        ({"email": "FIRST@example.com"}, 409, "email"),
        ({"birthday": "2999-01-01"}, 422, "birthday"),
        ({"time_zone": None}, 422, "time_zone"),
        ({"attributes": None}, 422, "attributes"),
        ({"time_zone": "Nowhere/City"}, 422, "time_zone"),
        ({"phone": "+1 555"}, 422, "phone"),
        ({"external_id": "changed"}, 422, "external_id"),
        ({"first_name": "Ok", "email": "broken"}, 422, "email"),
    ]
    for body, status, field in cases:
        response = await client.patch(url, json=body, headers=shop(app))
        assert response.status_code == status, (body, response.text)
        assert response.json()["errors"][0]["field"] == field, body
    unchanged = await client.get(url, headers=shop(app))
    assert unchanged.json()["updated_at"] == second["updated_at"]
    assert unchanged.json()["first_name"] is None
    assert first["email"] == "first@example.com"
    assert await published_types(app) == ["member.registered", "member.registered"]


async def test_pagination_walks_every_member_exactly_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    created = await asyncio.gather(*[register(client, app) for _ in range(23)])
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/v1/members", params=params, headers=shop(app))
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(item["id"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == {member["id"] for member in created}

    invalid: list[dict[str, str | int]] = [{"limit": 0}, {"limit": 201}, {"cursor": "garbage"}]
    for params in invalid:
        bad = await client.get("/v1/members", params=params, headers=shop(app))
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == f"query.{next(iter(params))}"


async def test_search_by_email_phone_and_external_id(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ada = await register(client, app, **PERSONAL)
    other = await register(client, app, phone="+4915123456789", consents={"push": True})

    async def search(**params: str) -> list[str]:
        response = await client.get("/v1/members", params=params, headers=shop(app))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await search(email="ADA.LOVELACE@example.com") == [ada["id"]]
    assert await search(phone="+44 20 7946 0958") == [ada["id"]]
    assert await search(external_id=ada["external_id"]) == [ada["id"]]
    assert await search(email="nobody@example.com") == []
    listed = await client.get(
        "/v1/members", params={"phone": "+49 151 23456789"}, headers=shop(app)
    )
    assert listed.json()["items"] == [
        (await client.get(f"/v1/members/{other['id']}", headers=shop(app))).json()
    ]
    assert listed.json()["items"][0]["consents"] == {"push": True}
    bad = await client.get("/v1/members", params={"phone": "12"}, headers=shop(app))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.phone"
    assert await count_rows(app, "members") == 2
