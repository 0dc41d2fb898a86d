"""A private copy of the platform for the chaos run: its own Kafka, PostgreSQL and Redis
(other ports, other data dirs, so a developer's `make up` or test run is never touched),
the five services as processes that can be killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
# Below Linux's ephemeral range (32768-60999): a restarted broker or database must be able
# to bind its port again while hundreds of client connections hold local ports.
STATE = ROOT / ".local" / "chaos"
KAFKA_PORT = 19192
PG_PORT = 15532
REDIS_PORT = 16479
SERVICE_PORTS = {
    "member": 18001,
    "points": 18002,
    "tier": 18003,
    "campaign": 18004,
    "analytics": 18005,
}

INFRA_ENV = {
    "MF_STATE_DIR": str(STATE),
    "MF_KAFKA_PORT": str(KAFKA_PORT),
    "MF_KAFKA_CONTROLLER_PORT": str(KAFKA_PORT + 1),
    "MF_PG_PORT": str(PG_PORT),
    "MF_REDIS_PORT": str(REDIS_PORT),
}
KAFKA_BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def infra(action: str) -> None:
    """infra/infra.sh <action> against the chaos run's own infrastructure."""
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "infra" / "infra.sh"), action, env={**os.environ, **INFRA_ENV}
    )
    if await process.wait() != 0:
        raise RuntimeError(f"infra/infra.sh {action} failed")


async def fresh_databases() -> None:
    admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres")
    try:
        for name in SERVICE_PORTS:
            await admin.execute(f'DROP DATABASE IF EXISTS "chaos_{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "chaos_{name}"')
    finally:
        await admin.close()


@dataclass
class Services:
    """The five services as child processes, all on one fresh topic prefix."""

    topic_prefix: str
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{SERVICE_PORTS[name]}"

    async def start(self, name: str) -> None:
        env = {
            **os.environ,
            "MF_SERVICE_NAME": f"{name}-svc",
            "MF_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/chaos_{name}",
            "MF_HTTP_PORT": str(SERVICE_PORTS[name]),
            "MF_KAFKA_BOOTSTRAP": KAFKA_BOOTSTRAP,
            "MF_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
            "MF_TOPIC_PREFIX": self.topic_prefix,
        }
        (STATE / "logs").mkdir(parents=True, exist_ok=True)
        log_file = (STATE / "logs" / f"{name}-svc.log").open("ab")
        try:
            self.processes[name] = await asyncio.create_subprocess_exec(
                str(ROOT / ".venv" / "bin" / f"{name}-svc"),
                env=env,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        finally:
            log_file.close()
        await self.wait_ready(name)

    async def wait_ready(self, name: str, within: float = 90) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.url(name), timeout=2) as client:
            while True:
                process = self.processes[name]
                if process.returncode is not None:
                    raise RuntimeError(f"{name}-svc exited with {process.returncode} (see logs)")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}-svc not ready after {within}s")
                await asyncio.sleep(0.2)

    async def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hooks, no flush, in-flight transactions die with it."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    async def stop_all(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.terminate()
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
