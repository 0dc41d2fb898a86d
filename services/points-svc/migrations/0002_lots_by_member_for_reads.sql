-- A member's live lots by expiry, and its pending lots: what a consumer batch loads (the
-- lots expiring by its latest event) and what a balance shows (pending points, points
-- expiring soon) are found without reading a frequent buyer's thousands of lots. The
-- rest is told by the account's running totals. IF NOT EXISTS: on a large table the
-- operator may build them first with CREATE INDEX CONCURRENTLY (docs/operations.md).
CREATE INDEX IF NOT EXISTS lots_live_by_member ON lots (member_id, expires_at) WHERE remaining > 0;
-- Only lots inside their pending period: none at all in a programme without one.
CREATE INDEX IF NOT EXISTS lots_pending_by_member ON lots (member_id) WHERE NOT released;
