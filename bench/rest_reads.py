"""REST reads: GET /v1/members/{id}/balance (points-svc) and GET /v1/members/{id}/tier
(tier-svc) under load from `wrk`, against a bare FastAPI endpoint measured in the same run.

Set-up (one scratch database per service and one topic prefix, all removed at the end):
`MEMBERS` members (quick: 300) are registered and make 1–9 purchases each over the last
300 days, published to `<prefix>members` and `<prefix>orders` as member-svc and an order
system would. points-svc and tier-svc then run as the platform runs them (`python -m
points_svc` / `python -m tier_svc`: one uvicorn process each, consumer and relay in the same
process) and build their state from those events: accounts with ledger entries and lots,
members with tiers and qualifying contributions (tier-svc also consumes the published
`points.earned`). The bench waits until both have applied everything and are idle.

Load: `wrk -t2 -c{8,64} -d10s` (quick: 2 s) after a 1 s warm-up, with a Lua script that
walks the member ids and sends a `storefront` bearer token (a JWT the services verify on
every request). Each run reports requests/s and the p99 latency (wrk's own histogram).
Every response must be 2xx (a run with errors fails the scenario).

Baseline: `bench/bare_app.py` under uvicorn (one process, like the services), the same
path and a JSON body of about the balance view's size, no auth and no database; measured
right before and right after the two services at each connection count (the mean of the
two is the baseline: the machine is shared and noisy).

Targets: requests/s ≥ 0.6 × the bare endpoint's; p99 ≤ 10 ms at 8 connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from memberflow_events.codec import encode
from memberflow_events.envelope import new_event
from memberflow_events.kafka import ensure_topics, make_producer
from memberflow_events.payloads import MemberRegistered, OrderLine, OrderPurchased
from memberflow_events.topics import all_topics
from memberflow_platform.auth import STOREFRONT, TokenVerifier
from points_svc.settings import PointsSettings

from bench.harness import ROOT, BenchContext, Measurement

SCENARIO = "rest_reads"
CONNECTIONS = (8, 64)
THREADS = 2
MIN_RATIO = 0.6
P99_TARGET_MS = 10.0
CATEGORIES = ("grocery", "books", "electronics", "apparel", "home", "beauty")

# Measured with the read path before this scenario's fixes (commit 0b753e7), full size.
BEFORE_OPTIMISATION: dict[str, Any] = {}

_WRK_SCRIPT = r"""
local ids = {}
local template = ""
local token = ""
local counter = 0

function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  template = args[2]
  token = args[3]
  counter = math.random(#ids)
end

function request()
  counter = counter % #ids + 1
  local headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", string.format(template, ids[counter]), headers)
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d," ..
    " \"socket_errors\": %d, \"p50_us\": %d, \"p99_us\": %d, \"max_us\": %d," ..
    " \"mean_us\": %.1f}\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
"""


async def run(context: BenchContext) -> list[Measurement]:
    members_count = 300 if context.quick else 2_000
    seconds = 2 if context.quick else 10
    wrk = _ensure_wrk()
    name = context.scratch_name("reads")
    prefix = f"{name}."
    databases = {"points": f"{name}_points", "tier": f"{name}_tier"}
    rng = random.Random(3)
    members = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(members_count)]
    for database in databases.values():
        await context.create_database(database)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    try:
        await ensure_topics(context.kafka_bootstrap, [prefix + t for t in all_topics()])
        purchases = await _seed(context, prefix, rng, members)
        ids = workdir / "members.txt"
        ids.write_text("".join(f"{member}\n" for member in members))
        script = workdir / "reads.lua"
        script.write_text(_WRK_SCRIPT)
        token = _token()
        async with (
            _process(context, "points_svc", databases["points"], prefix, workdir) as points,
            _process(context, "tier_svc", databases["tier"], prefix, workdir) as tier,
            _process(context, "bare", None, prefix, workdir) as bare,
        ):
            state = await _wait_seeded(context, databases, members_count, purchases)
            sizes = await _body_sizes(points, tier, bare, members[0], token)
            results: dict[tuple[str, int], dict[str, Any]] = {}
            for connections in CONNECTIONS:
                runs = [
                    ("bare", bare, "/v1/members/%s/balance", ""),
                    ("balance", points, "/v1/members/%s/balance", token),
                    ("tier", tier, "/v1/members/%s/tier", token),
                    ("bare-after", bare, "/v1/members/%s/balance", ""),
                ]
                for label, url, template, bearer in runs:
                    args = (wrk, url, template, bearer, ids, script, connections)
                    await _wrk(*args, seconds=1)  # warm-up: connections, caches, JIT-less paths
                    results[(label, connections)] = await _wrk(*args, seconds=seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        await context.drop_databases(list(databases.values()))
        await context.delete_topics(prefix)
    return _measurements(results, {"members": members_count, **state, "body_bytes": sizes})


def _measurements(
    results: dict[tuple[str, int], dict[str, Any]], setup: dict[str, Any]
) -> list[Measurement]:
    out: list[Measurement] = []
    for connections in CONNECTIONS:
        before, after = results[("bare", connections)], results[("bare-after", connections)]
        bare_rps = (before["rps"] + after["rps"]) / 2
        bare_p99 = (before["p99_ms"] + after["p99_ms"]) / 2
        bare = {"before": before, "after": after}
        for label, endpoint in (("balance", "GET balance"), ("tier", "GET tier")):
            result = results[(label, connections)]
            details: dict[str, Any] = {**result, "bare": bare}
            if not out:
                details |= {"setup": setup, **BEFORE_OPTIMISATION}
            out.append(
                Measurement(
                    scenario=SCENARIO,
                    name=f"{endpoint} req/s, {connections} conns",
                    value=result["rps"],
                    unit="req/s",
                    baseline=round(bare_rps, 1),
                    baseline_name="bare FastAPI endpoint",
                    min_ratio=MIN_RATIO,
                    details=details,
                )
            )
            out.append(
                Measurement(
                    scenario=SCENARIO,
                    name=f"{endpoint} p99, {connections} conns",
                    value=result["p99_ms"],
                    unit="ms",
                    higher_is_better=False,
                    target=P99_TARGET_MS if connections == 8 else None,
                    baseline=round(bare_p99, 2),
                    baseline_name="bare FastAPI endpoint",
                )
            )
    return out


# ---------- wrk ----------


def _ensure_wrk() -> str:
    """wrk from Debian, installed when missing (as infra/infra.sh installs its packages)."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


async def _wrk(
    wrk: str,
    base_url: str,
    template: str,
    token: str,
    ids: Path,
    script: Path,
    connections: int,
    *,
    seconds: int,
) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        wrk,
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base_url,
        "--",
        str(ids),
        template,
        token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith("BENCH ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {text[-2000:]}")
    raw = json.loads(line[len("BENCH ") :])
    if raw["status_errors"] or raw["socket_errors"]:
        raise RuntimeError(f"wrk saw errors against {base_url}{template}: {raw}")
    return {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "mean_ms": round(raw["mean_us"] / 1000, 2),
        "requests": raw["requests"],
        "seconds": seconds,
    }


def _token() -> str:
    settings = PointsSettings()
    verifier = TokenVerifier(
        settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
    )
    return verifier.issue("bench", [STOREFRONT], ttl=timedelta(hours=2))


async def _body_sizes(
    points: str, tier: str, bare: str, member: uuid.UUID, token: str
) -> dict[str, int]:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=5) as client:
        sizes = {}
        for label, url, headers in (
            ("balance", f"{points}/v1/members/{member}/balance", auth),
            ("tier", f"{tier}/v1/members/{member}/tier", auth),
            ("bare", f"{bare}/v1/members/{member}/balance", {}),
        ):
            response = await client.get(url, headers=headers)
            response.raise_for_status()
            sizes[label] = len(response.content)
    return sizes


# ---------- seeding ----------


async def _seed(
    context: BenchContext, prefix: str, rng: random.Random, members: Sequence[uuid.UUID]
) -> int:
    """Registrations and purchases on the topics; returns how many purchases."""
    now = datetime.now(UTC)
    records: list[tuple[str, bytes, bytes]] = []
    for member in members:
        joined = now - timedelta(days=rng.uniform(300, 700))
        registered = new_event(
            MemberRegistered(), producer="member-svc", member_id=member, occurred_at=joined
        )
        records.append(("members", registered.key.encode(), encode(registered)))
    purchases = 0
    for member in members:
        # A skewed spend: most members stay basic or silver, some reach gold or diamond.
        scale = rng.paretovariate(1.3) * 4_000
        for _ in range(rng.randint(1, 9)):
            lines = [
                OrderLine(
                    sku=f"sku-{rng.randrange(5_000)}",
                    category=rng.choice(CATEGORIES),
                    quantity=rng.choice((1, 1, 2)),
                    unit_price_minor=max(100, int(rng.expovariate(1 / scale))),
                )
                for _ in range(rng.randint(1, 3))
            ]
            order = OrderPurchased(
                order_id=f"bench-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}",
                member_id=member,
                currency="EUR",
                total_minor=sum(li.quantity * li.unit_price_minor for li in lines),
                lines=lines,
                channel="web",
            )
            event = new_event(
                order,
                producer="order-system:bench",
                member_id=member,
                occurred_at=now - timedelta(days=rng.uniform(1, 300)),
            )
            records.append(("orders", event.key.encode(), encode(event)))
            purchases += 1
    producer = make_producer(context.kafka_bootstrap, "bench-reads-seed")
    await producer.start()
    try:
        sent = [
            await producer.send(f"{prefix}{topic}", value, key=key) for topic, key, value in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return purchases


async def _wait_seeded(
    context: BenchContext, databases: dict[str, str], members: int, purchases: int
) -> dict[str, Any]:
    """Until both services applied every event (and tier-svc every points.earned)."""
    points_db = await asyncpg.connect(context.dsn(databases["points"]))
    tier_db = await asyncpg.connect(context.dsn(databases["tier"]))
    try:
        deadline = time.monotonic() + 600
        while True:
            accounts, orders, entries = await points_db.fetchrow(
                "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM orders),"
                " (SELECT count(*) FROM ledger_entries)"
            )
            unsent = await points_db.fetchval("SELECT count(*) FROM outbox")
            tiers = await tier_db.fetchval("SELECT count(*) FROM member_tiers")
            tier_inbox = await tier_db.fetchval("SELECT count(*) FROM inbox")
            # tier-svc applies registrations, purchases and one points.earned per entry.
            if (
                accounts == members
                and orders == purchases
                and unsent == 0
                and tiers == members
                and tier_inbox >= members + purchases + entries
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"seeding incomplete: {accounts} accounts, {orders}/{purchases} orders,"
                    f" {tiers} member tiers, tier inbox {tier_inbox}"
                )
            await asyncio.sleep(0.5)
        distribution = await tier_db.fetch(
            "SELECT tier_code, count(*) FROM member_tiers GROUP BY 1 ORDER BY 2 DESC"
        )
        lots = await points_db.fetchval("SELECT count(*) FROM lots")
    finally:
        await points_db.close()
        await tier_db.close()
    await asyncio.sleep(2)  # the consumers' last commits and the relay go idle
    return {
        "purchases": purchases,
        "ledger_entries": entries,
        "lots": lots,
        "tiers": {row["tier_code"]: row["count"] for row in distribution},
    }


# ---------- processes ----------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _process(
    context: BenchContext, module: str, database: str | None, prefix: str, workdir: Path
) -> AsyncIterator[str]:
    """A service as the platform runs it (its own interpreter, one uvicorn process), or
    the bare app under uvicorn; yields its base URL once it answers."""
    port = _free_port()
    if database is None:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        probe = "/v1/members/00000000-0000-0000-0000-000000000000/balance"
    else:
        command = [sys.executable, "-m", module]
        probe = "/readyz"
    env = {
        **os.environ,
        "MF_DATABASE_URL": context.database_url(database) if database else "",
        "MF_TOPIC_PREFIX": prefix,
        "MF_KAFKA_BOOTSTRAP": context.kafka_bootstrap,
        "MF_REDIS_URL": context.redis_url,
        "MF_HTTP_PORT": str(port),
        "MF_CREATE_TOPICS": "false",
        "MF_RUN_JOBS": "false",
        "MF_LOG_LEVEL": "WARNING",
    }
    log = workdir / f"{module if database else 'bare'}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=ROOT, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(base_url + probe, process, log)
        yield base_url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 40)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{url} exited: {_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready after 90s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


# ---------- scratch resources ----------
