"""Periodic jobs that run on one replica per interval, elected with a Redis lock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio import Redis

if TYPE_CHECKING:
    from memberflow_platform.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """`run` must be idempotent: a job may run again after a crash mid-way."""

    name: str
    interval_seconds: float
    run: Callable[[Runtime], Awaitable[None]]


async def claim_run(redis: Redis, service: str, job: str, interval_seconds: float) -> bool:
    """True for exactly one caller per interval across all replicas of a service."""
    key = f"memberflow:job:{service}:{job}"
    return bool(await redis.set(key, "1", nx=True, px=max(int(interval_seconds * 1000), 1)))


async def run_periodically(runtime: Runtime, job: PeriodicJob, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            if await claim_run(
                runtime.redis, runtime.settings.service_name, job.name, job.interval_seconds
            ):
                await job.run(runtime)
        except Exception:
            log.exception("job %s failed; next attempt in the next interval", job.name)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=job.interval_seconds)
        except TimeoutError:
            continue
