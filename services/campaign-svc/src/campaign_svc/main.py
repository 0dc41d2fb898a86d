"""Wiring of campaign-svc: the app factory and the console entry point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from memberflow_events.topics import ANALYTICS, MEMBERS, ORDERS, POINTS, TIERS
from memberflow_platform.app import create_service_app, serve
from memberflow_platform.runtime import ServiceDefinition

from campaign_svc import api, handlers, jobs
from campaign_svc.settings import CampaignSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: CampaignSettings | None = None) -> FastAPI:
    settings = settings or CampaignSettings()
    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="memberflow campaign-svc",
            migrations_dir=MIGRATIONS,
            routers=[api.router],
            consumes=[MEMBERS, TIERS, POINTS, ORDERS, ANALYTICS],
            handlers=handlers.HANDLERS,
            jobs=jobs.jobs_for(settings),
        )
    )


def main() -> None:
    settings = CampaignSettings()
    serve(lambda: create_app(settings), settings.http_host, settings.http_port, settings.log_level)
