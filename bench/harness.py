"""What every benchmark scenario shares: its context, its measurements, the results file.

A scenario is `async def run(context: BenchContext) -> list[Measurement]`, registered in
`bench/run.py`. Each measurement that has a target carries the same-run baseline it is
compared with (these machines are noisy: only ratios measured in one run mean anything).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from memberflow_events.kafka import kafka_admin

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class BenchContext:
    """Where the local infrastructure listens (the same env variables as the tests)."""

    kafka_bootstrap: str
    pg_port: int
    redis_url: str
    quick: bool  # smaller sizes: a smoke run that still exercises every path

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.pg_port}/{name}"

    def dsn(self, database: str) -> str:
        """asyncpg's DSN of a database (database_url is SQLAlchemy's)."""
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{database}"

    async def create_database(self, name: str) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    async def drop_databases(self, names: Sequence[str]) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def checkpoint(self) -> None:
        """Write PostgreSQL's dirty pages out now, so that a scenario does not pay for
        the writes of whatever ran before it (the test suite, an earlier scenario)."""
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute("CHECKPOINT")
        finally:
            await admin.close()

    async def delete_topics(self, prefix: str) -> None:
        """Every topic whose name starts with `prefix` (a scenario's scratch topics)."""
        async with kafka_admin(self.kafka_bootstrap, "bench") as admin:
            doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if doomed:
                await admin.delete_topics(doomed)

    @staticmethod
    def scratch_name(label: str) -> str:
        """A unique name for a database or topic prefix this run creates and removes."""
        return f"bench_{label}_{uuid.uuid4().hex[:8]}"

    @classmethod
    def from_environment(cls, quick: bool) -> BenchContext:
        return cls(
            kafka_bootstrap=f"127.0.0.1:{os.environ.get('MF_KAFKA_PORT', '19092')}",
            pg_port=int(os.environ.get("MF_PG_PORT", "15432")),
            redis_url=f"redis://127.0.0.1:{os.environ.get('MF_REDIS_PORT', '16379')}/0",
            quick=quick,
        )


@dataclass(frozen=True)
class Measurement:
    """One number, with the baseline and target it is judged against.

    `higher_is_better` says which way the target points. `target` is an absolute bound on
    `value`; `min_ratio` a bound on value / baseline (throughput) or baseline / value
    (latency) — both None for a number that is only reported.
    """

    scenario: str
    name: str
    value: float
    unit: str
    higher_is_better: bool = True
    target: float | None = None
    baseline: float | None = None
    baseline_name: str | None = None
    min_ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or self.value == 0:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value

    @property
    def met(self) -> bool | None:
        """None when nothing is targeted; otherwise whether every bound holds."""
        checks: list[bool] = []
        if self.target is not None:
            checks.append(
                self.value >= self.target if self.higher_is_better else self.value <= self.target
            )
        if self.min_ratio is not None:
            checks.append(self.ratio is not None and self.ratio >= self.min_ratio)
        return all(checks) if checks else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


Scenario = Callable[[BenchContext], Awaitable[list[Measurement]]]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        # Changes to tracked files only: earlier results not yet committed do not count.
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(measurements: Sequence[Measurement], quick: bool, notes: dict[str, Any]) -> Path:
    """bench/results/<date>.json (a second run the same day gets a time suffix)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    path = RESULTS / f"{now:%Y-%m-%d}{'-quick' if quick else ''}.json"
    if path.exists():
        path = RESULTS / f"{now:%Y-%m-%d-%H%M%S}{'-quick' if quick else ''}.json"
    document = {
        "measured_at": now.isoformat(),
        "quick": quick,
        "machine": machine(),
        "measurements": [m.as_json() for m in measurements],
        "notes": notes,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def table(measurements: Sequence[Measurement]) -> str:
    rows = [("scenario", "measurement", "value", "baseline", "ratio", "target", "met")]
    for m in measurements:
        bound = []
        if m.target is not None:
            bound.append(f"{'>=' if m.higher_is_better else '<='} {m.target:g} {m.unit}")
        if m.min_ratio is not None:
            bound.append(f"ratio >= {m.min_ratio:g}")
        rows.append(
            (
                m.scenario,
                m.name,
                f"{m.value:,.1f} {m.unit}",
                "" if m.baseline is None else f"{m.baseline:,.1f} ({m.baseline_name})",
                "" if m.ratio is None else f"{m.ratio:.2f}",
                ", ".join(bound),
                {None: "", True: "yes", False: "NO"}[m.met],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
