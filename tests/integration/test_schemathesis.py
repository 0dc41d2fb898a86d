"""Schemathesis against every service's OpenAPI document: no generated request gets a 5xx.

Each service runs for real (its own fresh database and topics, migrations, relay,
consumer) in uvicorn on a free local port, in a background thread with its own event
loop: the asyncpg pool, the Kafka clients and every request live on that loop, and
Schemathesis talks plain HTTP to it, as any client would.

Schemathesis reads the service's /openapi.json and, for every operation, sends the
schema's examples, boundary values of every parameter and body field (huge integers,
long strings, odd dates, missing and extra fields: its "coverage" phase) and a few
random cases, all with an ops (and storefront) token and a fresh Idempotency-Key, so
bodies get past the auth gate and the header check into validation and the handlers.
A 4xx is a fine answer to nonsense; a 5xx is a bug. Checked: not_a_server_error.

Reproducible: a fixed seed, deterministic generation, no example database, no
shrinking (a failure shows the case as generated, with a curl line to replay it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from memberflow_platform.auth import OPS, STOREFRONT
from schemathesis.core.result import Ok
from schemathesis.engine import Status, StopReason, events

from tests.conftest import CreateDatabase
from tests.support import bearer, build_service_app

pytestmark = pytest.mark.infra

SERVICES = ("member-svc", "points-svc", "tier-svc", "campaign-svc", "analytics-svc")
SEED = 20261123
# Random cases per operation, on top of examples and boundary values; raise it for a
# deeper local hunt (MF_SCHEMATHESIS_EXAMPLES=1000); CI keeps the module under a minute.
FUZZ_EXAMPLES = int(os.environ.get("MF_SCHEMATHESIS_EXAMPLES", "50"))


def build_app(service: str, database_url: str, topic_prefix: str) -> FastAPI:
    return build_service_app(service, database_url, topic_prefix)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceThread:
    """A service in uvicorn on its own thread and event loop, until `stop`."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="error", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="schemathesis-service")
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self, within: float = 60.0) -> None:
        self.thread.start()
        deadline = asyncio.get_running_loop().time() + within
        while not self.server.started:
            if not self.thread.is_alive():
                raise AssertionError(f"the service at {self.url} did not start (see the log)")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the service at {self.url} did not start in {within}s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 30)


@pytest.fixture
async def service_thread(
    service: str, create_database: CreateDatabase, topic_prefix: str
) -> AsyncIterator[ServiceThread]:
    app = build_app(service, await create_database(service.replace("-", "_")), topic_prefix)
    running = ServiceThread(app)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest.fixture
def api_schema(service_thread: ServiceThread) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "cache": {"enabled": False},  # nothing carried between runs, no .schemathesis/
            "generation": {
                "max-examples": FUZZ_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "no-shrink": True,
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
            "request-timeout": 30,
        }
    )
    schema = schemathesis.openapi.from_url(f"{service_thread.url}/openapi.json", config=config)
    # One token for every route: ops, and storefront for the coupon routes an operator may
    # not call (member:self is not needed: such a token only narrows what it may do).
    token = bearer(service_thread.app, "schemathesis", OPS, STOREFRONT)

    class Credentials:
        """The token, and a fresh Idempotency-Key on every request (the documents do not
        declare that header; without it the POSTs that need it stop at a 400)."""

        def get(
            self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext
        ) -> dict[str, str]:
            return token

        def set(
            self, case: schemathesis.Case[Any], data: dict[str, str], ctx: schemathesis.AuthContext
        ) -> None:
            case.headers.update(data)
            case.headers["Idempotency-Key"] = uuid.uuid4().hex

    schema.auth(refresh_interval=None)(Credentials)
    return schema


@dataclass
class Outcome:
    cases: Counter[str] = field(default_factory=Counter)  # operation -> requests sent
    statuses: Counter[int] = field(default_factory=Counter)  # status code -> responses
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: str = "never finished"


def run_engine(schema: schemathesis.BaseSchema) -> Outcome:
    """Schemathesis's own runner (what `schemathesis run` does), events gathered up."""
    outcome = Outcome()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            outcome.cases[recorder.label] += len(recorder.cases)
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    outcome.statuses[interaction.response.status_code] += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        outcome.failures.append(
                            f"{recorder.label} ({event.phase}, {case_id}): "
                            f"{info.failure.title}\n{info.failure.message}\n{info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            outcome.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            outcome.stop_reason = event.stop_reason
    return outcome


@pytest.mark.parametrize("service", SERVICES)
def test_no_server_errors(service: str, api_schema: schemathesis.BaseSchema) -> None:
    operations = {
        result.ok().label for result in api_schema.get_all_operations() if isinstance(result, Ok)
    }
    outcome = run_engine(api_schema)
    print(
        f"{service}: {sum(outcome.cases.values())} cases over {len(outcome.cases)} operations,"
        f" statuses {dict(sorted(outcome.statuses.items()))}"
    )
    for label, count in sorted(outcome.cases.items()):
        print(f"  {count:5d}  {label}")
    assert not outcome.errors, "\n\n".join(outcome.errors)
    assert not outcome.failures, f"{len(outcome.failures)} failures:\n\n" + "\n\n".join(
        outcome.failures
    )
    assert outcome.stop_reason == StopReason.COMPLETED, outcome.stop_reason
    untested = operations - {label for label, count in outcome.cases.items() if count}
    assert not untested, f"operations never called: {sorted(untested)}"
