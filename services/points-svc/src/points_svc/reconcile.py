"""Reconciliation: per account, balance = sum of entries = live lots − debt.

`python -m points_svc.reconcile` (database from MF_DATABASE_URL) prints every violation
per account and exits 1 if there is any; GET /v1/ops/reconciliation and the tests use
the same `check_all`.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from uuid import UUID

from memberflow_platform.database import make_engine, make_sessions
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from points_svc import domain, repository
from points_svc.domain import Violation
from points_svc.repository import StoredLedger
from points_svc.settings import PointsSettings


@dataclass(frozen=True)
class AccountViolations:
    member_id: UUID
    violations: tuple[Violation, ...]


def check_ledger(ledger: StoredLedger) -> list[Violation]:
    """The domain's invariants (ADR 0002 R23) plus: lifetime totals explain the ledger."""
    return [
        *domain.reconcile(ledger.entries, ledger.lots, ledger.debt),
        *_totals_violations(ledger),
    ]


def _totals_violations(ledger: StoredLedger) -> list[Violation]:
    totals = ledger.totals
    explained = totals.earned - totals.reversed - totals.redeemed - totals.expired + totals.adjusted
    recorded = sum(entry.points for entry in ledger.entries)
    if explained == recorded:
        return []
    return [
        Violation(
            "totals",
            f"lifetime totals explain {explained} points but the entries sum to {recorded}",
        )
    ]


async def check_account(session: AsyncSession, member_id: UUID) -> list[Violation]:
    ledger = await repository.load_ledger(session, member_id)
    return check_ledger(ledger) if ledger is not None else []


async def check_all(
    sessions: async_sessionmaker[AsyncSession], chunk_size: int = 500
) -> list[AccountViolations]:
    """Every account with at least one violation; each account read in its own snapshot."""
    found: list[AccountViolations] = []
    after = repository.NO_MEMBER
    while True:
        async with sessions() as session:
            members = await repository.member_ids(session, after, chunk_size)
        if not members:
            return found
        for member_id in members:
            async with sessions() as session, session.begin():
                violations = await check_account(session, member_id)
            if violations:
                found.append(AccountViolations(member_id, tuple(violations)))
        after = members[-1]


async def _report(database_url: str) -> int:
    engine = make_engine(database_url, pool_size=2)
    try:
        found = await check_all(make_sessions(engine))
    finally:
        await engine.dispose()
    for account in found:
        for violation in account.violations:
            print(f"{account.member_id}\t{violation.rule}\t{violation.detail}")
    print(f"{len(found)} account(s) with violations", file=sys.stderr)
    return 1 if found else 0


def main() -> None:
    settings = PointsSettings()
    sys.exit(asyncio.run(_report(settings.database_url)))


if __name__ == "__main__":
    main()
