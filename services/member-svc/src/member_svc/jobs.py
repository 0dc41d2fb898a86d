"""Periodic jobs: none yet. Intake is written at request time and erasure is immediate."""

from __future__ import annotations

from collections.abc import Sequence

from memberflow_platform.jobs import PeriodicJob

JOBS: Sequence[PeriodicJob] = ()
