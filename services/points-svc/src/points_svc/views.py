"""Domain values as API views, and the opaque history cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from points_svc.domain import Balance, EntryKind, LedgerEntry
from points_svc.repository import HistoryRow
from points_svc.schemas import BalanceView, CauseView, ExpiringView, HistoryEntryView


def balance_view(member_id: UUID, balance: Balance, now: datetime) -> BalanceView:
    return BalanceView(
        member_id=member_id,
        available=balance.available,
        pending=balance.pending,
        debt=balance.debt,
        total=balance.total,
        expiring_soon=[
            ExpiringView(expires_on=bucket.expires_on, points=bucket.points)
            for bucket in balance.expiring_soon
        ],
        lifetime_earned=balance.lifetime_earned,
        lifetime_redeemed=balance.lifetime_redeemed,
        as_of=now,
    )


def history_entry_view(row: HistoryRow) -> HistoryEntryView:
    entry = row.entry
    return HistoryEntryView(
        entry_id=row.entry_id,
        kind=entry.kind.value,
        points=entry.points,
        debt_change=entry.debt_change,
        waived=entry.waived,
        cause=cause_of(entry, row.campaign_id),
        created_at=entry.occurred_at,
    )


def cause_of(entry: LedgerEntry, campaign_id: UUID | None) -> CauseView:
    """What caused an entry, with the references a support agent needs."""
    match entry.kind:
        case EntryKind.EARN:
            return CauseView(type="order", order_id=entry.order_id)
        case EntryKind.REVERSE:
            return CauseView(type="refund", order_id=entry.order_id, refund_id=entry.reference)
        case EntryKind.REDEEM:
            return CauseView(type="redemption", redemption_id=entry.reference)
        case EntryKind.ADJUST:
            return CauseView(type="adjustment", actor=entry.actor, reason=entry.reason)
        case EntryKind.EXPIRE:
            return CauseView(type="expiry", lot_id=entry.reference, order_id=entry.order_id)
        case EntryKind.BONUS:
            return CauseView(type="bonus", award_id=entry.reference, campaign_id=campaign_id)
        case EntryKind.REFERRAL:
            return CauseView(type="referral", reason=entry.reference)


class InvalidCursor(ValueError):
    pass


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The entry id a cursor from `encode_cursor` points at; InvalidCursor otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("not a cursor returned by this API") from None
    if not raw.startswith("e") or not raw[1:].isdigit():
        raise InvalidCursor("not a cursor returned by this API")
    return int(raw[1:])
