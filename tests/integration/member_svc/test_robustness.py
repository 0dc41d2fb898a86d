"""Hostile input gets a 4xx naming what is wrong, never a 500 and never a write."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.member_svc.helpers import count_rows, published_types, register, shop

pytestmark = pytest.mark.infra

PROFILE_BODIES = [
    "[]",
    "null",
    "{",
    '{"email": 5}',
    '{"attributes": {"a": 5}}',
    '{"birthday": "1990-02-30"}',
    '{"first_name": "a\\u0000b"}',
    '{"first_name": "\\ud800"}',
    '{"attributes": {"a": "x\\u0000"}}',
    '{"email": "' + "x" * 400 + '@example.com"}',
]
INTAKE_BODIES = [
    ("activities", '{"kind": "visit", "store_id": "a\\u0000"}'),
    ("activities", '{"kind": "visit", "channel": "\\ud800"}'),
    ("feedback", '{"nps_score": 5, "comment": "a\\u0000"}'),
    ("feedback", '{"nps_score": true}'),
]


async def test_malformed_bodies_are_422_and_write_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = await register(client, app)
    base = f"/v1/members/{member['id']}"
    json_headers = {**shop(app), "content-type": "application/json"}
    for index, raw in enumerate(PROFILE_BODIES):
        for method, url in (("POST", "/v1/members"), ("PATCH", base)):
            headers = {**json_headers, "Idempotency-Key": f"k{index}"}
            response = await client.request(method, url, content=raw, headers=headers)
            assert response.status_code == 422, (method, raw, response.text)
            assert response.json()["errors"], raw
    for path, raw in INTAKE_BODIES:
        response = await client.post(f"{base}/{path}", content=raw, headers=json_headers)
        assert response.status_code == 422, (path, raw, response.text)
    bad_query = await client.get("/v1/members", params={"external_id": "a\x00"}, headers=shop(app))
    assert bad_query.status_code == 422
    assert bad_query.json()["errors"][0]["field"] == "query.external_id"
    bad_path = await client.get("/v1/members/not-a-uuid", headers=shop(app))
    assert bad_path.json()["errors"][0]["field"] == "path.member_id"

    assert await count_rows(app, "members") == 1
    assert await count_rows(app, "activities") + await count_rows(app, "feedback") == 0
    assert await published_types(app) == ["member.registered"]
    read = await client.get(base, headers=shop(app))
    assert read.json()["updated_at"] == member["updated_at"]


async def test_probes_and_openapi(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/members", "/v1/members/{member_id}", "/v1/members/{member_id}/export"} <= set(
        paths
    )
