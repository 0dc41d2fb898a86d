"""Wiring of tier-svc: the app factory and the console entry point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from memberflow_events.inbox import Clock, utc_now
from memberflow_events.topics import MEMBERS, ORDERS, POINTS
from memberflow_platform.app import create_service_app, serve
from memberflow_platform.runtime import ServiceDefinition

from tier_svc import api, handlers, jobs
from tier_svc.settings import TierSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: TierSettings | None = None, clock: Clock = utc_now) -> FastAPI:
    """The service; `clock` is "now" for handlers, the daily job and the API (tests inject one)."""
    settings = settings or TierSettings()
    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="memberflow tier-svc",
            migrations_dir=MIGRATIONS,
            routers=[api.router],
            consumes=[ORDERS, MEMBERS, POINTS],
            handlers=handlers.HANDLERS,
            jobs=jobs.JOBS,
            clock=clock,
        )
    )


def main() -> None:
    settings = TierSettings()
    serve(lambda: create_app(settings), settings.http_host, settings.http_port, settings.log_level)
