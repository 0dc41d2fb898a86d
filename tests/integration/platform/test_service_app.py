"""The shared app factory: probes, metrics, problem+json, auth and idempotency keys."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from memberflow_events.envelope import new_event
from memberflow_events.outbox import add_to_outbox
from memberflow_events.payloads import MemberActivity
from memberflow_platform.app import create_service_app, get_session
from memberflow_platform.auth import OPS, STOREFRONT, Principal, ensure_member_access, require
from memberflow_platform.idempotency import idempotency_key, run_once
from memberflow_platform.runtime import Runtime, ServiceDefinition
from memberflow_platform.settings import ServiceSettings
from pydantic import BaseModel, EmailStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import CreateDatabase
from tests.support import (
    KAFKA_BOOTSTRAP,
    REDIS_URL,
    bearer,
    eventually,
    read_topic,
    running_service,
)

router = APIRouter(prefix="/v1")


class Greeting(BaseModel):
    email: EmailStr
    amount: int


@router.get("/members/{member_id}")
async def read_member(
    member_id: uuid.UUID, principal: Principal = Depends(require("member:self", STOREFRONT, OPS))
) -> dict[str, str]:
    ensure_member_access(principal, member_id)
    return {"member_id": str(member_id)}


@router.post("/greetings", status_code=201)
async def greet(
    body: Greeting,
    key: str = Depends(idempotency_key),
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(require(STOREFRONT)),
) -> dict[str, Any]:
    async def action() -> tuple[int, dict[str, Any]]:
        await session.execute(text("CREATE TABLE IF NOT EXISTS greetings_seen (id serial)"))
        await session.execute(text("INSERT INTO greetings_seen DEFAULT VALUES"))
        return 201, {"greeting_id": str(uuid.uuid4()), "email": body.email}

    async with session.begin():
        _status, response = await run_once(
            session, scope="greetings", key=key, request_body=body.model_dump(), action=action
        )
    return response


@router.post("/members/{member_id}/visits", status_code=201)
async def visit(
    member_id: uuid.UUID,
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(require(STOREFRONT)),
) -> dict[str, str]:
    event = new_event(
        MemberActivity(kind="visit"),
        producer="probe-svc",
        member_id=member_id,
        occurred_at=datetime.now(UTC),
    )
    async with session.begin():
        await add_to_outbox(session, [event])
    return {"event_id": str(event.event_id)}


async def _probe_app(
    create_database: CreateDatabase, topic_prefix: str, migrations: Path, **settings: Any
) -> FastAPI:
    configured = ServiceSettings(
        service_name="probe-svc",
        database_url=await create_database("probe"),
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
        topic_prefix=topic_prefix,
        **settings,
    )
    return create_service_app(
        ServiceDefinition(
            settings=configured, title="probe", migrations_dir=migrations, routers=[router]
        )
    )


@pytest.fixture
async def app(create_database: CreateDatabase, topic_prefix: str, tmp_path: Path) -> FastAPI:
    return await _probe_app(create_database, topic_prefix, tmp_path)


async def test_probes_and_metrics(app: FastAPI) -> None:
    async with running_service(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "kafka": "ok", "background": "ok"}
        metrics = await client.get("/metrics")
        assert "memberflow_http_requests_total" in metrics.text

        async def relay_reports() -> bool:
            text = (await client.get("/metrics")).text
            return (
                'memberflow_outbox_relay_leading{service="probe-svc"} 1.0' in text
                and 'memberflow_outbox_backlog{service="probe-svc"} 0.0' in text
            )

        await eventually(relay_reports, what="the relay leading, its backlog reported")
        assert (await client.get("/openapi.json")).status_code == 200


async def test_authentication_and_scopes(app: FastAPI) -> None:
    member, other = uuid.uuid4(), uuid.uuid4()
    url = f"/v1/members/{member}"
    async with running_service(app) as client:
        missing = await client.get(url)
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        expired = bearer(app, str(member), "member:self", ttl=timedelta(seconds=-10))
        assert (await client.get(url, headers=expired)).json()["detail"] == "token expired"
        garbage = {"Authorization": "Bearer not-a-token"}
        assert (await client.get(url, headers=garbage)).status_code == 401
        assert (
            await client.get(url, headers=bearer(app, str(member), "member:self"))
        ).status_code == 200
        assert (
            await client.get(url, headers=bearer(app, str(other), "member:self"))
        ).status_code == 403
        assert (await client.get(url, headers=bearer(app, "shop", STOREFRONT))).status_code == 200
        assert (await client.get(url, headers=bearer(app, "someone"))).status_code == 403


async def test_validation_errors_name_the_field(app: FastAPI) -> None:
    headers = {**bearer(app, "shop", STOREFRONT), "Idempotency-Key": "k1"}
    async with running_service(app) as client:
        response = await client.post(
            "/v1/greetings", json={"email": "nope", "amount": 1}, headers=headers
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["status"] == 422
        assert problem["errors"][0]["field"] == "email"
        assert "email" in problem["detail"]
        bad_path = await client.get(
            "/v1/members/not-a-uuid", headers=bearer(app, "shop", STOREFRONT)
        )
        assert bad_path.status_code == 422
        assert bad_path.json()["errors"][0]["field"] == "path.member_id"


async def test_idempotency_key_replays_and_rejects_reuse(app: FastAPI) -> None:
    auth = bearer(app, "shop", STOREFRONT)
    body = {"email": "a@example.com", "amount": 5}
    async with running_service(app) as client:
        assert (await client.post("/v1/greetings", json=body, headers=auth)).status_code == 400
        headers = {**auth, "Idempotency-Key": "same"}
        responses = await asyncio.gather(
            *[client.post("/v1/greetings", json=body, headers=headers) for _ in range(8)]
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["greeting_id"] for r in responses}) == 1
        reused = await client.post("/v1/greetings", json={**body, "amount": 6}, headers=headers)
        assert reused.status_code == 422
        assert reused.json()["errors"][0]["field"] == "Idempotency-Key"
        runtime = app.state.runtime
        async with runtime.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM greetings_seen")) == 1


async def test_a_graceful_stop_publishes_the_events_of_the_last_requests(
    create_database: CreateDatabase, topic_prefix: str, tmp_path: Path
) -> None:
    """Commits do not wake the relay here (trigger disabled) and it polls every ten
    minutes: only its last pass, when the service stops, can publish the visit."""
    app = await _probe_app(create_database, topic_prefix, tmp_path, relay_poll_interval_ms=600_000)
    async with running_service(app) as client:
        runtime = app.state.runtime
        await eventually(lambda: _leads(runtime), what="the relay leading")
        async with runtime.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE outbox DISABLE TRIGGER outbox_written"))
        shop = bearer(app, "shop", STOREFRONT)
        response = await client.post(f"/v1/members/{uuid.uuid4()}/visits", headers=shop)
        assert response.status_code == 201, response.text
        await asyncio.sleep(0.5)
        async with runtime.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 1

    records = await read_topic(f"{topic_prefix}members")
    assert [dict(r.headers)["event_id"].decode() for r in records] == [response.json()["event_id"]]


async def _leads(runtime: Runtime) -> bool:
    return runtime.relay is not None and runtime.relay.leading
