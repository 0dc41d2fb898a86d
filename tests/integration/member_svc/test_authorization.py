"""Who may do what: 401 without a token, 403 for another member or a missing scope."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.member_svc.helpers import (
    count_rows,
    member_token,
    ops,
    register,
    registration,
    shop,
)
from tests.support import bearer

pytestmark = pytest.mark.infra


def _member_routes(member_id: str) -> list[tuple[str, str, dict[str, object] | None]]:
    base = f"/v1/members/{member_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"first_name": "Mallory"}),
        ("GET", f"{base}/consents", None),
        ("PUT", f"{base}/consents/email", {"granted": False}),
        ("POST", f"{base}/activities", {"kind": "login"}),
        ("POST", f"{base}/feedback", {"nps_score": 0}),
        ("GET", f"{base}/export", None),
        ("DELETE", base, None),
    ]


async def test_a_member_token_cannot_touch_another_member(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    victim = await register(client, app)
    intruder = await register(client, app)
    token = member_token(app, intruder["id"])
    for method, url, body in _member_routes(victim["id"]):
        response = await client.request(method, url, json=body, headers=token)
        assert response.status_code == 403, (method, url)
        assert response.headers["content-type"] == "application/problem+json"
    assert await count_rows(app, "activities") == 0
    assert await count_rows(app, "feedback") == 0
    unchanged = await client.get(f"/v1/members/{victim['id']}", headers=ops(app))
    assert unchanged.json()["status"] == "active"
    assert unchanged.json()["first_name"] is None


async def test_a_member_token_works_on_its_own_member(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = await register(client, app)
    token = member_token(app, member["id"])
    expected = [200, 200, 200, 200, 202, 202, 200, 200]
    for (method, url, body), status in zip(_member_routes(member["id"]), expected, strict=True):
        response = await client.request(method, url, json=body, headers=token)
        assert response.status_code == status, (method, url, response.text)


async def test_requests_without_a_token_are_401(client: httpx.AsyncClient, app: FastAPI) -> None:
    member = await register(client, app)
    routes = [
        *_member_routes(member["id"]),
        ("GET", "/v1/members", None),
        ("POST", "/v1/members", registration()),
    ]
    for method, url, body in routes:
        response = await client.request(method, url, json=body, headers={"Idempotency-Key": "k"})
        assert response.status_code == 401, (method, url)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_listing_searching_and_registering_need_a_system_scope(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = await register(client, app)
    token = member_token(app, member["id"])
    assert (await client.get("/v1/members", headers=token)).status_code == 403
    search = await client.get("/v1/members", params={"email": "a@example.com"}, headers=token)
    assert search.status_code == 403
    lookup = await client.get(
        f"/v1/members/by-referral-code/{member['referral_code']}", headers=token
    )
    assert lookup.status_code == 403
    own_register = await client.post(
        "/v1/members", json=registration(), headers={**token, "Idempotency-Key": "k"}
    )
    assert own_register.status_code == 403
    no_scope = bearer(app, member["id"])
    assert (await client.get(f"/v1/members/{member['id']}", headers=no_scope)).status_code == 403
    assert (await client.get("/v1/members", headers=ops(app))).status_code == 200
    assert (await client.get("/v1/members", headers=shop(app))).status_code == 200
    assert await count_rows(app, "members") == 1
