"""Persistence of points accounts: the only module of points-svc that writes SQL.

Every function runs inside the caller's transaction and never commits. A posting is
always written under the account's row lock (`lock_account`), which serialises every
writer of one member: REST calls, consumer instances and jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import Row, TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from points_svc.domain import (
    Account,
    Allocation,
    EntryKind,
    LedgerEntry,
    LifetimeTotals,
    Lot,
    OrderEarning,
    Posting,
    Source,
    UnloadedLots,
)

NO_MEMBER = UUID(int=0)


@dataclass(frozen=True)
class LoadedAccount:
    """An account as a posting needs it, plus what a purchase needs besides."""

    member_id: UUID
    account: Account
    multiplier: Decimal
    order_known: bool
    events_waiting: bool


@dataclass(frozen=True)
class StoredOrder:
    member_id: UUID
    earning: OrderEarning


@dataclass(frozen=True)
class HistoryRow:
    entry_id: int
    entry: LedgerEntry
    campaign_id: UUID | None


@dataclass(frozen=True)
class StoredLedger:
    """Everything reconciliation needs about one account."""

    member_id: UUID
    entries: tuple[LedgerEntry, ...]
    lots: tuple[Lot, ...]
    debt: int
    totals: LifetimeTotals


# ---------- accounts ----------


def _account_query(lot_filter: str) -> TextClause:
    # Unlocked reads: the account row, its multiplier and the lots `lot_filter` keeps
    # (one row per lot, or one row without a lot), all from one snapshot. Writers lock
    # with `lock_points_account` instead (see the migration for why).
    return text(
        "SELECT a.member_id, a.debt, a.earned, a.reversed, a.redeemed, a.expired, a.adjusted,"
        " COALESCE((SELECT t.multiplier FROM tier_multipliers t"
        "           WHERE t.member_id = a.member_id), 1) AS multiplier,"
        " FALSE AS order_known, FALSE AS events_waiting,"
        " l.lot_id, l.source_kind, l.source_ref, l.original, l.remaining, l.forfeited,"
        " l.available_at, l.expires_at, l.released, l.reminded"
        " FROM accounts a"
        f" LEFT JOIN lots l ON l.member_id = a.member_id AND {lot_filter}"
        " WHERE a.member_id = :member_id"
    )


_READ_LIVE = _account_query("l.remaining > 0")

# What a balance needs of the live lots, condensed in the database: the lots expiring by
# the horizon ($3, expired ones included) and the unreleased ones, one row per (expired
# or not, pending or not, UTC expiry date within the horizon or beyond it) with the
# remaining points summed. The other live lots are released and expire after the
# horizon: all available, told by the account's totals (`UnloadedLots`). A member with
# thousands of purchases costs the database and the service a handful of rows.
_READ_FOR_BALANCE = (
    "SELECT a.member_id, a.debt, a.earned, a.reversed, a.redeemed, a.expired, a.adjusted, l.*"
    " FROM accounts a LEFT JOIN LATERAL ("
    "   SELECT min(lot_id::text)::uuid AS lot_id, min(source_kind) AS source_kind,"
    "     min(source_ref) AS source_ref, sum(original) AS original,"
    "     sum(remaining) AS remaining, sum(forfeited) AS forfeited,"
    "     min(available_at) AS available_at, min(expires_at) AS expires_at,"
    "     bool_and(released) AS released, bool_and(reminded) AS reminded"
    "   FROM lots"
    "   WHERE member_id = a.member_id AND remaining > 0"
    "     AND (expires_at <= $3 OR NOT released)"
    "   GROUP BY expires_at <= $2, available_at > $2, CASE WHEN expires_at <= $3"
    "     THEN date_trunc('day', expires_at AT TIME ZONE 'UTC') END"
    " ) l ON TRUE"
    " WHERE a.member_id = ANY($1::uuid[])"
)
_READ_ALL = _account_query("TRUE")
# Locks first, then loads in a statement of its own (see migrations/0001_init.sql).
_LOCK_AND_LOAD = "SELECT * FROM lock_points_account($1, $2, $3, $4, $5, $6)"
_SHARE_LOCK = text("SELECT 1 FROM accounts WHERE member_id = :member_id FOR SHARE")

_CREATE_ACCOUNT = text(
    "INSERT INTO accounts (member_id) VALUES (:member_id) ON CONFLICT (member_id) DO NOTHING"
)


async def create_account(session: AsyncSession, member_id: UUID) -> None:
    """Open an empty account unless the member already has one."""
    await session.execute(_CREATE_ACCOUNT, {"member_id": member_id})


async def lock_account(
    session: AsyncSession,
    member_id: UUID,
    *,
    order_id: str | None = None,
    order_lot: UUID | None = None,
    include_unreleased: bool = False,
    parked: tuple[str, str] | None = None,
) -> LoadedAccount:
    """Lock the member's account FOR UPDATE (creating it if needed) and load its live lots.

    `order_id` also tells whether that order was already credited; `order_lot` loads
    that lot even when empty (refunds); `include_unreleased` loads lots emptied while
    pending so the release job can mark them; `parked` (consumer, wait key) tells whether
    events are parked under that key (`events_waiting`).
    """
    consumer, wait_key = parked or (None, None)
    driver = await _driver(session)
    rows = await driver.fetch(
        _LOCK_AND_LOAD, member_id, order_id, order_lot, include_unreleased, consumer, wait_key
    )
    return _loaded(member_id, rows)


# A batch's accounts: created, locked in member order and loaded in one round trip
# (migrations/0003_lock_points_accounts.sql says how and why). Live lots expiring after
# `lots_until` stay in storage, unread (`UnloadedLots`): a credit needs none of them,
# and frequent buyers have thousands.
_LOCK_AND_LOAD_ACCOUNTS = "SELECT * FROM lock_points_accounts($1, $2)"


async def lock_accounts(
    session: AsyncSession, member_ids: Iterable[UUID], *, lots_until: datetime
) -> dict[UUID, LoadedAccount]:
    """`lock_account` for many members in one statement (no order or parking flags),
    for credits up to `lots_until`: live lots expiring later stay in storage, told by the
    account's totals in `Account.unloaded` (`load_unloaded_lots` fetches them)."""
    members = sorted(set(member_ids))
    if not members:
        return {}
    driver = await _driver(session)
    rows: dict[UUID, list[Record]] = {}
    for row in await driver.fetch(_LOCK_AND_LOAD_ACCOUNTS, members, lots_until):
        rows.setdefault(row["member_id"], []).append(row)
    return {member_id: _loaded(member_id, found, lots_until) for member_id, found in rows.items()}


_UNLOADED_LOTS = (
    "SELECT lot_id, source_kind, source_ref, original, remaining, forfeited, available_at,"
    " expires_at, released, reminded"
    " FROM lots WHERE member_id = $1 AND remaining > 0 AND expires_at > $2"
)


async def load_unloaded_lots(session: AsyncSession, account: Account, member_id: UUID) -> Account:
    """The account with the lots `lock_accounts` left in storage loaded (the caller holds
    its lock, and has not taken from lots since, so the stored ones are current). They
    must hold what the account's totals said they do."""
    if account.unloaded is None:
        return account
    driver = await _driver(session)
    rows = await driver.fetch(_UNLOADED_LOTS, member_id, account.unloaded.until)
    stored = tuple(_lot(row) for row in rows)
    found = sum(lot.remaining for lot in stored)
    if found != account.unloaded.points:
        raise RuntimeError(
            f"the stored lots of {member_id} hold {found} points, its totals say"
            f" {account.unloaded.points}: run the points reconciliation"
        )
    return replace(account, lots=(*stored, *account.lots), unloaded=None)


# The orders already credited and the wait keys with parked events, in one statement.
_BATCH_ORDER_FLAGS = (
    "SELECT order_id AS key, TRUE AS credited FROM orders"
    " WHERE order_id = ANY(CAST($1 AS text[]))"
    " UNION"
    " SELECT wait_key, FALSE FROM parked_events"
    " WHERE consumer = $2 AND wait_key = ANY(CAST($3 AS text[]))"
)


async def order_flags_of(
    session: AsyncSession, order_ids: Sequence[str], consumer: str, wait_keys: Sequence[str]
) -> tuple[set[str], set[str]]:
    """Which of these orders were credited already, and which of these wait keys have
    events parked by `consumer`."""
    if not order_ids and not wait_keys:
        return set(), set()
    driver = await _driver(session)
    rows = await driver.fetch(_BATCH_ORDER_FLAGS, list(order_ids), consumer, list(wait_keys))
    credited = {row["key"] for row in rows if row["credited"]}
    waiting = {row["key"] for row in rows if not row["credited"]}
    return credited, waiting


async def read_account(session: AsyncSession, member_id: UUID) -> LoadedAccount | None:
    """The account and its live lots without locking; None for an unknown member."""
    rows = (await session.execute(_READ_LIVE, {"member_id": member_id})).all()
    return _loaded(member_id, [row._mapping for row in rows]) if rows else None


async def read_balance_accounts(
    connection: asyncpg.Connection, member_ids: Sequence[UUID], now: datetime, horizon: datetime
) -> list[Account | None]:
    """Each member's account with the lots `domain.balance` at `now` with expiring-soon
    `horizon` needs, condensed (see _READ_FOR_BALANCE), in the order of `member_ids`;
    None for an unknown member. One statement, so one snapshot, on a plain asyncpg
    connection (a hot read path)."""
    rows_of: dict[UUID, list[Record]] = {}
    for row in await connection.fetch(_READ_FOR_BALANCE, member_ids, now, horizon):
        rows_of.setdefault(row["member_id"], []).append(row)
    return [
        _account(rows_of[member], horizon, released=True) if member in rows_of else None
        for member in member_ids
    ]


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction.

    The per-event statements (lock and write) go straight to the driver: SQLAlchemy adds
    about 100 µs per statement, a third of the consumer's budget per event.
    """
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_DRIVER)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # SQLAlchemy begins the driver's transaction lazily, at its first statement.
        await connection.execute(text("SELECT 1"))
    session.info[_DRIVER] = (session.sync_session.get_transaction(), driver)
    return driver


_DRIVER = "points_svc.driver"


Record = Mapping[Any, Any]


def _loaded(
    member_id: UUID, rows: Sequence[Record], lots_until: datetime | None = None
) -> LoadedAccount:
    """The account of `rows` (see `_account`) and what a purchase needs besides."""
    first = rows[0]
    return LoadedAccount(
        member_id=member_id,
        account=_account(rows, lots_until),
        multiplier=Decimal(first["multiplier"]),
        order_known=bool(first["order_known"]),
        events_waiting=bool(first["events_waiting"]),
    )


def _account(
    rows: Sequence[Record], lots_until: datetime | None, *, released: bool = False
) -> Account:
    """The account of `rows`; with `lots_until`, they hold only its lots expiring by
    then (and with `released`, the unreleased ones too), and the rest are left in storage
    (`Account.unloaded`)."""
    first = rows[0]
    lots = tuple(_lot(row) for row in rows if row["lot_id"] is not None)
    debt, totals = int(first["debt"]), _totals(first)
    unloaded = None
    if lots_until is not None:
        unloaded = UnloadedLots.rest_of(totals, debt, lots, lots_until, released=released)
    return Account(lots=lots, debt=debt, totals=totals, unloaded=unloaded)


def _totals(row: Record) -> LifetimeTotals:
    return LifetimeTotals(
        earned=int(row["earned"]),
        reversed=int(row["reversed"]),
        redeemed=int(row["redeemed"]),
        expired=int(row["expired"]),
        adjusted=int(row["adjusted"]),
    )


def _lot(row: Record) -> Lot:
    return Lot(
        lot_id=row["lot_id"],
        source=Source(row["source_kind"], row["source_ref"]),
        original=int(row["original"]),
        remaining=int(row["remaining"]),
        available_at=row["available_at"],
        expires_at=row["expires_at"],
        released=bool(row["released"]),
        reminded=bool(row["reminded"]),
        forfeited=int(row["forfeited"]),
    )


# ---------- postings ----------

# One statement writes any number of postings: entries appended, lots upserted (newest
# state of each), order earnings upserted, accounts saved. Each table's rows travel as
# one typed array per column (asyncpg encodes them in binary; no JSON to build or parse).
_WRITE_POSTINGS = """
WITH appended AS (
    INSERT INTO ledger_entries (member_id, kind, points, debt_change, waived, allocation_lots,
        allocation_points, order_id, reference, campaign_id, actor, reason, occurred_at)
    SELECT e.member_id, e.kind, e.points, e.debt_change, e.waived, CAST(e.lots AS uuid[]),
        CAST(e.amounts AS bigint[]), e.order_id, e.reference, e.campaign_id, e.actor,
        e.reason, e.occurred_at
    FROM unnest(CAST($1 AS uuid[]), CAST($2 AS text[]), CAST($3 AS bigint[]),
        CAST($4 AS bigint[]), CAST($5 AS bigint[]), CAST($6 AS text[]), CAST($7 AS text[]),
        CAST($8 AS text[]), CAST($9 AS text[]), CAST($10 AS uuid[]), CAST($11 AS text[]),
        CAST($12 AS text[]), CAST($13 AS timestamptz[]))
        WITH ORDINALITY AS e(member_id, kind, points, debt_change, waived, lots, amounts,
        order_id, reference, campaign_id, actor, reason, occurred_at, n)
    ORDER BY e.n
), lots_written AS (
    INSERT INTO lots (lot_id, member_id, source_kind, source_ref, original, remaining,
        forfeited, available_at, expires_at, released, reminded)
    SELECT * FROM unnest(CAST($14 AS uuid[]), CAST($15 AS uuid[]), CAST($16 AS text[]),
        CAST($17 AS text[]), CAST($18 AS bigint[]), CAST($19 AS bigint[]),
        CAST($20 AS bigint[]), CAST($21 AS timestamptz[]), CAST($22 AS timestamptz[]),
        CAST($23 AS boolean[]), CAST($24 AS boolean[]))
    ON CONFLICT (lot_id) DO UPDATE SET remaining = EXCLUDED.remaining,
        forfeited = EXCLUDED.forfeited, released = EXCLUDED.released,
        reminded = EXCLUDED.reminded
    WHERE lots.member_id = EXCLUDED.member_id
), orders_written AS (
    INSERT INTO orders (order_id, member_id, lot_id, earned_points, total_minor,
        refunded_minor, reversed_points, refund_ids, multiplier, purchased_at)
    SELECT o.order_id, o.member_id, o.lot_id, o.earned_points, o.total_minor,
        o.refunded_minor, o.reversed_points, CAST(o.refund_ids AS text[]), o.multiplier,
        COALESCE(o.purchased_at, now())
    FROM unnest(CAST($25 AS text[]), CAST($26 AS uuid[]), CAST($27 AS uuid[]),
        CAST($28 AS bigint[]), CAST($29 AS bigint[]), CAST($30 AS bigint[]),
        CAST($31 AS bigint[]), CAST($32 AS text[]), CAST($33 AS numeric[]),
        CAST($34 AS timestamptz[])) AS o(order_id, member_id, lot_id, earned_points,
        total_minor, refunded_minor, reversed_points, refund_ids, multiplier, purchased_at)
    ON CONFLICT (order_id) DO UPDATE SET refunded_minor = EXCLUDED.refunded_minor,
        reversed_points = EXCLUDED.reversed_points, refund_ids = EXCLUDED.refund_ids,
        updated_at = now()
    WHERE orders.member_id = EXCLUDED.member_id
)
UPDATE accounts a SET debt = n.debt, earned = n.earned, reversed = n.reversed,
    redeemed = n.redeemed, expired = n.expired, adjusted = n.adjusted,
    version = a.version + 1, updated_at = now()
FROM unnest(CAST($35 AS uuid[]), CAST($36 AS bigint[]), CAST($37 AS bigint[]),
    CAST($38 AS bigint[]), CAST($39 AS bigint[]), CAST($40 AS bigint[]),
    CAST($41 AS bigint[])) AS n(member_id, debt, earned, reversed, redeemed, expired,
    adjusted)
WHERE a.member_id = n.member_id
"""

_COLUMNS = (13, 11, 10, 7)  # parameters of entries, lots, orders, accounts, in that order


@dataclass(frozen=True)
class PostingWrite:
    """A posting to persist, with what the ledger records beside the domain's values:
    the campaign of a bonus, and for a new order its multiplier and purchase time."""

    member_id: UUID
    posting: Posting
    campaign_id: UUID | None = None
    multiplier: Decimal = Decimal(1)
    purchased_at: datetime | None = None


async def write_posting(
    session: AsyncSession,
    member_id: UUID,
    posting: Posting,
    *,
    campaign_id: UUID | None = None,
    multiplier: Decimal = Decimal(1),
    purchased_at: datetime | None = None,
) -> None:
    """Persist a posting: its entries, the lots it created or changed, the order earning
    it created or updated, and the account's debt and totals."""
    await write_postings(
        session, [PostingWrite(member_id, posting, campaign_id, multiplier, purchased_at)]
    )


async def write_postings(session: AsyncSession, writes: Sequence[PostingWrite]) -> None:
    """Persist many postings (a consumer batch's) in one statement."""
    columns = _postings_columns(writes)
    if columns is not None:
        driver = await _driver(session)
        await driver.execute(_WRITE_POSTINGS, *columns)


def _postings_columns(writes: Sequence[PostingWrite]) -> list[list[Any]] | None:
    """The statement's parameters: every table's rows, transposed into columns."""
    entries: list[tuple[Any, ...]] = []
    lots: dict[UUID, tuple[Any, ...]] = {}
    orders: dict[str, tuple[Any, ...]] = {}
    accounts: dict[UUID, tuple[Any, ...]] = {}
    for write in writes:
        posting, member_id = write.posting, write.member_id
        entries.extend(_entry_row(member_id, entry, write.campaign_id) for entry in posting.entries)
        # One row may change once per statement: keep each lot's and order's newest state.
        for lot in posting.lots:
            lots[lot.lot_id] = _lot_row(member_id, lot)
        if posting.order is not None:
            orders[posting.order.order_id] = _order_row(member_id, write)
        if posting.entries:
            accounts[member_id] = _account_row(member_id, posting.account)
    if not (entries or lots or orders):
        return None
    columns: list[list[Any]] = []
    for rows, width in zip(
        (entries, list(lots.values()), list(orders.values()), list(accounts.values())),
        _COLUMNS,
        strict=True,
    ):
        if rows:
            columns.extend(list(column) for column in zip(*rows, strict=True))
        else:
            columns.extend([] for _ in range(width))
    return columns


def _array(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of plain values (uuids, ints, ids without commas)."""
    return "{" + ",".join(_array_item(value) for value in values) + "}"


def _array_item(value: object) -> str:
    if isinstance(value, int | UUID):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _entry_row(member_id: UUID, entry: LedgerEntry, campaign_id: UUID | None) -> tuple[Any, ...]:
    return (
        member_id,
        entry.kind.value,
        entry.points,
        entry.debt_change,
        entry.waived,
        _array(allocation.lot_id for allocation in entry.allocations),
        _array(allocation.points for allocation in entry.allocations),
        entry.order_id,
        entry.reference,
        campaign_id,
        entry.actor,
        entry.reason,
        entry.occurred_at,
    )


def _lot_row(member_id: UUID, lot: Lot) -> tuple[Any, ...]:
    return (
        lot.lot_id,
        member_id,
        lot.source.kind,
        lot.source.reference,
        lot.original,
        lot.remaining,
        lot.forfeited,
        lot.available_at,
        lot.expires_at,
        lot.released,
        lot.reminded,
    )


def _order_row(member_id: UUID, write: PostingWrite) -> tuple[Any, ...]:
    order = write.posting.order
    assert order is not None
    return (
        order.order_id,
        member_id,
        order.lot_id,
        order.earned_points,
        order.total_minor,
        order.refunded_minor,
        order.reversed_points,
        _array(sorted(order.refund_ids)),
        write.multiplier,
        write.purchased_at,
    )


def _account_row(member_id: UUID, account: Account) -> tuple[Any, ...]:
    totals = account.totals
    return (
        member_id,
        account.debt,
        totals.earned,
        totals.reversed,
        totals.redeemed,
        totals.expired,
        totals.adjusted,
    )


async def load_lot(session: AsyncSession, lot_id: UUID) -> Lot | None:
    """One lot as stored, whatever its remaining points."""
    query = text(
        "SELECT lot_id, source_kind, source_ref, original, remaining, forfeited,"
        " available_at, expires_at, released, reminded FROM lots WHERE lot_id = :lot_id"
    )
    row = (await session.execute(query, {"lot_id": lot_id})).first()
    return _lot(row._mapping) if row is not None else None


async def order_flags(
    session: AsyncSession, order_id: str, parked: tuple[str, str]
) -> tuple[bool, bool]:
    """Whether the order was credited already, and whether events wait under `parked`
    (consumer, wait key): what `lock_account` tells when the lock is taken."""
    driver = await _driver(session)
    row = await driver.fetchrow(_ORDER_FLAGS, order_id, *parked)
    return bool(row["order_known"]), bool(row["events_waiting"])


_ORDER_FLAGS = (
    "SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1) AS order_known,"
    " EXISTS (SELECT 1 FROM parked_events WHERE consumer = $2 AND wait_key = $3)"
    " AS events_waiting"
)


async def lot_exists(session: AsyncSession, lot_id: UUID) -> bool:
    """Whether a credit with this lot id was already applied (campaign awards)."""
    found = await session.scalar(text("SELECT 1 FROM lots WHERE lot_id = :id"), {"id": lot_id})
    return found is not None


# ---------- orders ----------

_FIND_ORDER = text(
    "SELECT order_id, member_id, lot_id, earned_points, total_minor, refunded_minor,"
    " reversed_points, refund_ids FROM orders WHERE order_id = :order_id"
)


async def find_order(session: AsyncSession, order_id: str) -> StoredOrder | None:
    row = (await session.execute(_FIND_ORDER, {"order_id": order_id})).first()
    if row is None:
        return None
    earning = OrderEarning(
        order_id=row.order_id,
        lot_id=row.lot_id,
        earned_points=int(row.earned_points),
        total_minor=int(row.total_minor),
        refunded_minor=int(row.refunded_minor),
        reversed_points=int(row.reversed_points),
        refund_ids=frozenset(row.refund_ids),
    )
    return StoredOrder(member_id=row.member_id, earning=earning)


# ---------- tier multiplier projection ----------

_SAVE_MULTIPLIER = text(
    "INSERT INTO tier_multipliers (member_id, tier, multiplier, changed_at)"
    " VALUES (:member_id, :tier, :multiplier, :changed_at)"
    " ON CONFLICT (member_id) DO UPDATE SET tier = EXCLUDED.tier,"
    " multiplier = EXCLUDED.multiplier, changed_at = EXCLUDED.changed_at"
    " WHERE tier_multipliers.changed_at <= EXCLUDED.changed_at"
)


async def save_tier_multiplier(
    session: AsyncSession, member_id: UUID, tier: str, multiplier: Decimal, changed_at: datetime
) -> None:
    """Project a tier change; an older change arriving late does not win."""
    await session.execute(
        _SAVE_MULTIPLIER,
        {"member_id": member_id, "tier": tier, "multiplier": multiplier, "changed_at": changed_at},
    )


async def tier_multiplier(session: AsyncSession, member_id: UUID) -> Decimal:
    """The member's projected multiplier (1 before any tier change was seen)."""
    query = text("SELECT multiplier FROM tier_multipliers WHERE member_id = :member_id")
    found = await session.scalar(query, {"member_id": member_id})
    return Decimal(found) if found is not None else Decimal(1)


# ---------- redemptions ----------


async def insert_redemption(
    session: AsyncSession,
    redemption_id: UUID,
    member_id: UUID,
    points: int,
    reference: str | None,
    redeemed_at: datetime,
) -> None:
    await session.execute(
        text(
            "INSERT INTO redemptions (redemption_id, member_id, points, reference, redeemed_at)"
            " VALUES (:redemption_id, :member_id, :points, :reference, :redeemed_at)"
        ),
        {
            "redemption_id": redemption_id,
            "member_id": member_id,
            "points": points,
            "reference": reference,
            "redeemed_at": redeemed_at,
        },
    )


# ---------- history ----------

_ENTRY_COLUMNS = (
    "entry_id, kind, points, debt_change, waived, allocation_lots, allocation_points,"
    " order_id, reference, campaign_id, actor, reason, occurred_at"
)
_HISTORY = text(
    f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries WHERE member_id = :member_id"
    " AND entry_id < :before ORDER BY entry_id DESC LIMIT :limit"
)
_ALL_ENTRIES = text(
    f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries WHERE member_id = :member_id ORDER BY entry_id"
)
_NEWEST = 2**63 - 1


async def history_page(
    session: AsyncSession, member_id: UUID, before_entry_id: int | None, limit: int
) -> list[HistoryRow]:
    """Entries newest first, strictly before `before_entry_id` (keyset pagination)."""
    params = {
        "member_id": member_id,
        "before": before_entry_id if before_entry_id is not None else _NEWEST,
        "limit": limit,
    }
    rows = (await session.execute(_HISTORY, params)).all()
    return [HistoryRow(int(row.entry_id), _entry(row), row.campaign_id) for row in rows]


def _entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        kind=EntryKind(row.kind),
        points=int(row.points),
        occurred_at=row.occurred_at,
        allocations=tuple(
            Allocation(lot_id, int(points))
            for lot_id, points in zip(row.allocation_lots, row.allocation_points, strict=True)
        ),
        debt_change=int(row.debt_change),
        order_id=row.order_id,
        reference=row.reference,
        actor=row.actor,
        reason=row.reason,
        waived=int(row.waived),
    )


# ---------- jobs ----------


def _due_members(condition: str) -> TextClause:
    return text(
        f"SELECT DISTINCT member_id FROM lots WHERE {condition} AND member_id > :after"
        " ORDER BY member_id LIMIT :limit"
    )


_DUE_TO_EXPIRE = _due_members("remaining > 0 AND expires_at <= :now")
_DUE_TO_RELEASE = _due_members("NOT released AND available_at <= :now")
_DUE_FOR_REMINDER = _due_members(
    "remaining > 0 AND NOT reminded AND expires_at > :now AND expires_at <= :horizon"
)


async def members_with_lots_to_expire(
    session: AsyncSession, now: datetime, after: UUID, limit: int
) -> list[UUID]:
    """Members (ids above `after`, ascending) holding unspent points expired by `now`."""
    params = {"now": now, "after": after, "limit": limit}
    return list((await session.scalars(_DUE_TO_EXPIRE, params)).all())


async def members_with_lots_to_release(
    session: AsyncSession, now: datetime, after: UUID, limit: int
) -> list[UUID]:
    """Members (ids above `after`, ascending) with lots whose pending period has ended."""
    params = {"now": now, "after": after, "limit": limit}
    return list((await session.scalars(_DUE_TO_RELEASE, params)).all())


async def members_with_lots_to_remind(
    session: AsyncSession, now: datetime, horizon: datetime, after: UUID, limit: int
) -> list[UUID]:
    """Members (ids above `after`, ascending) with live lots expiring by `horizon` not
    yet announced."""
    params = {"now": now, "horizon": horizon, "after": after, "limit": limit}
    return list((await session.scalars(_DUE_FOR_REMINDER, params)).all())


# ---------- reconciliation ----------


async def member_ids(session: AsyncSession, after: UUID, limit: int) -> list[UUID]:
    """Account ids above `after`, ascending."""
    query = text(
        "SELECT member_id FROM accounts WHERE member_id > :after ORDER BY member_id LIMIT :limit"
    )
    return list((await session.scalars(query, {"after": after, "limit": limit})).all())


async def load_ledger(session: AsyncSession, member_id: UUID) -> StoredLedger | None:
    """All entries and lots of one account, consistent with each other (FOR SHARE)."""
    # Lock first, read after: the reads then see every posting committed before the lock.
    if (await session.execute(_SHARE_LOCK, {"member_id": member_id})).first() is None:
        return None
    rows = (await session.execute(_READ_ALL, {"member_id": member_id})).all()
    loaded = _loaded(member_id, [row._mapping for row in rows])
    entry_rows = (await session.execute(_ALL_ENTRIES, {"member_id": member_id})).all()
    return StoredLedger(
        member_id=member_id,
        entries=tuple(_entry(row) for row in entry_rows),
        lots=loaded.account.lots,
        debt=loaded.account.debt,
        totals=loaded.account.totals,
    )
