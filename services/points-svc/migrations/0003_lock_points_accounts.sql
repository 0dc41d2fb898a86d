-- A consumer batch's accounts in one round trip: create the missing ones, lock them all
-- in member order (two batches never wait on each other in a cycle), then load them with
-- their lots expiring by p_lots_until, in a statement of its own (see
-- lock_points_account in 0001_init.sql for why). Each statement of a VOLATILE plpgsql
-- function takes a new snapshot, so the load sees what earlier lock holders committed.
CREATE FUNCTION lock_points_accounts(p_member_ids uuid[], p_lots_until timestamptz)
RETURNS TABLE (
    member_id uuid, debt bigint, earned bigint, reversed bigint, redeemed bigint,
    expired bigint, adjusted bigint, multiplier numeric, order_known boolean,
    events_waiting boolean, lot_id uuid, source_kind text, source_ref text, original bigint,
    remaining bigint, forfeited bigint, available_at timestamptz, expires_at timestamptz,
    released boolean, reminded boolean
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO accounts (member_id)
    SELECT m FROM unnest(p_member_ids) AS m ORDER BY m
    ON CONFLICT (member_id) DO NOTHING;
    PERFORM 1 FROM accounts WHERE member_id = ANY(p_member_ids) ORDER BY member_id FOR UPDATE;
    RETURN QUERY
    SELECT a.member_id, a.debt, a.earned, a.reversed, a.redeemed, a.expired, a.adjusted,
           COALESCE(t.multiplier, 1), FALSE, FALSE,
           l.lot_id, l.source_kind, l.source_ref, l.original, l.remaining, l.forfeited,
           l.available_at, l.expires_at, l.released, l.reminded
    FROM accounts a
    LEFT JOIN tier_multipliers t ON t.member_id = a.member_id
    LEFT JOIN lots l ON l.member_id = a.member_id
        AND l.remaining > 0 AND l.expires_at <= p_lots_until
    WHERE a.member_id = ANY(p_member_ids);
END
$$;
