"""Wiring of points-svc: the app factory and the console entry point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from memberflow_events.topics import CAMPAIGNS, MEMBERS, ORDERS, TIERS
from memberflow_platform.app import create_service_app, serve
from memberflow_platform.runtime import ServiceDefinition

from points_svc import api, consumer_batch, handlers, jobs
from points_svc.settings import PointsSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: PointsSettings | None = None) -> FastAPI:
    settings = settings or PointsSettings()
    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="memberflow points-svc",
            migrations_dir=MIGRATIONS,
            routers=[api.router],
            consumes=[ORDERS, TIERS, CAMPAIGNS, MEMBERS],
            handlers=handlers.build_handlers(settings.earning_rules()),
            jobs=jobs.build_jobs(settings),
            batch_hooks=consumer_batch.batch_hooks(settings.service_name),
        )
    )


def main() -> None:
    settings = PointsSettings()
    serve(lambda: create_app(settings), settings.http_host, settings.http_port, settings.log_level)
