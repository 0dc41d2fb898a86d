"""The app factory every service uses: lifespan, probes, metrics, errors, auth."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from memberflow_events.kafka import quiet_repeated_kafka_errors
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memberflow_platform.auth import TokenVerifier, authenticate
from memberflow_platform.problems import install_problem_handlers
from memberflow_platform.runtime import Runtime, ServiceDefinition

REQUESTS = Counter(
    "memberflow_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "memberflow_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def create_service_app(definition: ServiceDefinition) -> FastAPI:
    settings = definition.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(definition)
        app.state.runtime = runtime
        await runtime.start()
        # Start-up objects (modules, models, routes) leave the collector's generations,
        # so full collections on the request path do not walk them again.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=definition.title,
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.token_verifier = TokenVerifier(
        settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
    )
    install_problem_handlers(app, authenticate)
    _install_metrics(app, settings.service_name)
    _install_probes(app)
    for router in definition.routers:
        app.include_router(router)
    return app


def _install_probes(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        return JSONResponse(
            {"status": "ok" if runtime.failed is None else runtime.failed},
            status_code=200 if runtime.failed is None else 503,
        )

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        checks = await request.app.state.runtime.readiness()
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _install_metrics(app: FastAPI, service: str) -> None:
    app.add_middleware(_MetricsMiddleware, service=service)


class _MetricsMiddleware:
    """Request count and latency per route. Plain ASGI: Starlette's BaseHTTPMiddleware
    runs every request in an extra task with memory streams, which cost more CPU than a
    balance read itself (bench/README.md)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            LATENCY.labels(self.service, method, route).observe(time.perf_counter() - started)
            REQUESTS.labels(self.service, method, route, str(status[0])).inc()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session; routes open their own transaction with session.begin()."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        yield session


def json_response(view: BaseModel) -> Response:
    """A 200 JSON response of a view, serialised by pydantic once (as FastAPI would
    serialise a returned model: field names, JSON mode), for hot endpoints that skip
    FastAPI's second validation against their response_model."""
    return Response(view.model_dump_json(), media_type="application/json")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def serve(app_factory: Callable[[], FastAPI], host: str, port: int, log_level: str) -> None:
    """Run a service: HTTP API, consumer, relay and jobs in one process until SIGTERM."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    quiet_repeated_kafka_errors()
    uvicorn.run(
        app_factory(),
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=20,
        # Longer than clients' and load balancers' idle timeouts, so that the client closes
        # an idle connection first; with uvicorn's 5 s a request sent on a pooled
        # connection as the server closes it fails with a connection error.
        timeout_keep_alive=75,
    )
