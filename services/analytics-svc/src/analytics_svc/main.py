"""Wiring of analytics-svc: the app factory and the console entry point."""

from __future__ import annotations

from fastapi import FastAPI
from memberflow_events.topics import ANALYTICS, CAMPAIGNS, MEMBERS, ORDERS, POINTS, TIERS
from memberflow_platform.app import create_service_app, serve
from memberflow_platform.runtime import ServiceDefinition

from analytics_svc import api, handlers, jobs
from analytics_svc.rebuild import MIGRATIONS
from analytics_svc.settings import AnalyticsSettings


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()
    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="memberflow analytics-svc",
            migrations_dir=MIGRATIONS,
            routers=[api.router, api.pages],
            consumes=[ORDERS, MEMBERS, POINTS, TIERS, CAMPAIGNS, ANALYTICS],
            handlers=handlers.HANDLERS,
            jobs=jobs.jobs_for(settings),
        )
    )


def main() -> None:
    settings = AnalyticsSettings()
    serve(lambda: create_app(settings), settings.http_host, settings.http_port, settings.log_level)
