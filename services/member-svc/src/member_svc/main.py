"""Wiring of member-svc: the app factory and the console entry point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from memberflow_platform.app import create_service_app, serve
from memberflow_platform.runtime import ServiceDefinition

from member_svc import api, handlers, jobs
from member_svc.settings import MemberSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: MemberSettings | None = None) -> FastAPI:
    settings = settings or MemberSettings()
    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="memberflow member-svc",
            migrations_dir=MIGRATIONS,
            routers=[api.router],
            consumes=(),
            handlers=handlers.HANDLERS,
            jobs=jobs.JOBS,
        )
    )


def main() -> None:
    settings = MemberSettings()
    serve(lambda: create_app(settings), settings.http_host, settings.http_port, settings.log_level)
