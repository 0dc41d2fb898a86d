"""Reconciliation: does an account's ledger agree with its lots and its debt?"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from uuid import UUID

from points_svc.domain_model import LedgerEntry, Lot, Violation


def reconcile(entries: Iterable[LedgerEntry], lots: Iterable[Lot], debt: int) -> list[Violation]:
    """Every broken invariant of one account; an empty list means the books balance.

    Checks: sum of entries = sum of lots' remaining − debt; each entry's points equal its
    lot allocations minus its debt change; each lot's remaining equals the sum of its
    allocations and lies in [0, original]; debt equals the sum of debt changes and is
    never negative. Lots already expired but not yet written off still count here: they
    are on the books until the expiry job posts their entries.
    """
    entries = tuple(entries)
    lots = tuple(lots)
    return [
        *_balance_violations(entries, lots, debt),
        *_entry_violations(entries),
        *_lot_violations(entries, lots),
        *_debt_violations(entries, debt),
    ]


def _balance_violations(
    entries: tuple[LedgerEntry, ...], lots: tuple[Lot, ...], debt: int
) -> list[Violation]:
    ledger = sum(entry.points for entry in entries)
    books = sum(lot.remaining for lot in lots) - debt
    if ledger == books:
        return []
    return [
        Violation(
            "balance",
            f"sum of entries {ledger} != sum of lots' remaining - debt {books}",
        )
    ]


def _entry_violations(entries: tuple[LedgerEntry, ...]) -> list[Violation]:
    violations = []
    for index, entry in enumerate(entries):
        allocated = sum(allocation.points for allocation in entry.allocations)
        if entry.points != allocated - entry.debt_change:
            violations.append(
                Violation(
                    "entry",
                    f"entry {index} ({entry.kind}) moves {entry.points} points but allocates "
                    f"{allocated} to lots and {entry.debt_change} to debt",
                )
            )
    return violations


def _lot_violations(entries: tuple[LedgerEntry, ...], lots: tuple[Lot, ...]) -> list[Violation]:
    allocated: defaultdict[UUID, int] = defaultdict(int)
    for entry in entries:
        for allocation in entry.allocations:
            allocated[allocation.lot_id] += allocation.points
    violations = []
    known = {lot.lot_id for lot in lots}
    for lot in lots:
        if not 0 <= lot.remaining <= lot.original:
            violations.append(
                Violation(
                    "lot", f"lot {lot.lot_id} remaining {lot.remaining} outside [0, {lot.original}]"
                )
            )
        if allocated[lot.lot_id] != lot.remaining:
            violations.append(
                Violation(
                    "lot",
                    f"lot {lot.lot_id} remaining {lot.remaining} != its allocations "
                    f"{allocated[lot.lot_id]}",
                )
            )
    for lot_id in sorted(set(allocated) - known, key=str):
        violations.append(Violation("lot", f"entries allocate to unknown lot {lot_id}"))
    return violations


def _debt_violations(entries: tuple[LedgerEntry, ...], debt: int) -> list[Violation]:
    violations = []
    if debt < 0:
        violations.append(Violation("debt", f"debt is negative: {debt}"))
    recorded = sum(entry.debt_change for entry in entries)
    if recorded != debt:
        violations.append(Violation("debt", f"debt {debt} != sum of debt changes {recorded}"))
    return violations
