"""`make bench`: run every scenario, write bench/results/<date>.json, print the table.

    python -m bench.run [--quick] [--only purchase_pipeline,rest_reads]

Scenarios run one after another (never concurrently: they would measure each other).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
import traceback
from typing import Any

from bench.harness import BenchContext, Measurement, Scenario, table, write_results

# module in bench/ -> what it measures; each module has `async def run(context)`.
SCENARIOS = {
    "purchase_pipeline": "purchase events/s through points-svc, and latency to REST at 1k/s",
    "rest_reads": "balance and tier reads vs a bare FastAPI endpoint (wrk)",
    "analytics_replay": "analytics-svc projection rebuild events/s",
    "analytics_refit": "RFM + CLV refit for 1,000,000 members",
}


def _scenario(name: str) -> Scenario:
    module = importlib.import_module(f"bench.{name}")
    scenario: Scenario = module.run
    return scenario


async def main(quick: bool, only: list[str]) -> int:
    context = BenchContext.from_environment(quick)
    measurements: list[Measurement] = []
    notes: dict[str, Any] = {}
    failed: list[str] = []
    for name in only:
        print(f"[bench] {name}: {SCENARIOS[name]}", flush=True)
        started = time.perf_counter()
        try:
            await context.checkpoint()
            measurements += await _scenario(name)(context)
        except Exception:
            failed.append(name)
            notes[f"{name}.error"] = traceback.format_exc()
            traceback.print_exc()
        notes[f"{name}.seconds"] = round(time.perf_counter() - started, 1)
    path = write_results(measurements, quick, notes)
    print()
    print(table(measurements))
    print(f"\nresults: {path.relative_to(path.parents[2])}")
    missed = [f"{m.scenario}/{m.name}" for m in measurements if m.met is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    if failed:
        print(f"scenarios that failed: {', '.join(failed)}")
    return 1 if failed else 0


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
    return asyncio.run(main(args.quick, only))


if __name__ == "__main__":
    sys.exit(cli())
