-- points-svc: accounts, lots, the append-only ledger, per-order earnings, the tier
-- multiplier projection and redemptions. Points are bigint; time is timestamptz (UTC).

-- One row per member; every posting locks it (SELECT ... FOR UPDATE) first, which
-- serialises redemptions, consumer instances and jobs touching the same member.
CREATE TABLE accounts (
    member_id   uuid        PRIMARY KEY,
    debt        bigint      NOT NULL DEFAULT 0 CHECK (debt >= 0),
    earned      bigint      NOT NULL DEFAULT 0,
    reversed    bigint      NOT NULL DEFAULT 0,
    redeemed    bigint      NOT NULL DEFAULT 0,
    expired     bigint      NOT NULL DEFAULT 0,
    adjusted    bigint      NOT NULL DEFAULT 0,
    version     bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One credit each; spent, reversed and expired independently.
CREATE TABLE lots (
    lot_id        uuid        PRIMARY KEY,
    member_id     uuid        NOT NULL REFERENCES accounts (member_id),
    source_kind   text        NOT NULL CHECK (source_kind IN ('order', 'bonus', 'adjustment', 'referral')),
    source_ref    text,
    original      bigint      NOT NULL CHECK (original > 0),
    remaining     bigint      NOT NULL,
    forfeited     bigint      NOT NULL DEFAULT 0,
    available_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    released      boolean     NOT NULL,
    reminded      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Few indexes on purpose: every purchase inserts a lot, and each index costs that insert.
-- The lots of one account (every posting loads its live ones; reconciliation all).
CREATE INDEX lots_by_member ON lots (member_id);
-- What the jobs look for (reminders scan the expiry index too).
CREATE INDEX lots_due_to_expire ON lots (expires_at) WHERE remaining > 0;
CREATE INDEX lots_due_to_release ON lots (available_at) WHERE NOT released;

-- The ledger: append-only, one row per balance change (or reversal made only of waived
-- points). allocation_lots/allocation_points are the per-lot changes (same length).
CREATE TABLE ledger_entries (
    entry_id          bigserial   PRIMARY KEY,
    member_id         uuid        NOT NULL REFERENCES accounts (member_id),
    kind              text        NOT NULL CHECK (kind IN ('earn', 'bonus', 'referral', 'adjust', 'redeem', 'reverse', 'expire')),
    points            bigint      NOT NULL,
    debt_change       bigint      NOT NULL DEFAULT 0,
    waived            bigint      NOT NULL DEFAULT 0,
    allocation_lots   uuid[]      NOT NULL,
    allocation_points bigint[]    NOT NULL,
    order_id          text,
    reference         text,
    campaign_id       uuid,
    actor             text,
    reason            text,
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(allocation_lots) = cardinality(allocation_points))
);
CREATE INDEX ledger_entries_by_member ON ledger_entries (member_id, entry_id);

CREATE FUNCTION ledger_entries_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries are append-only: % is not allowed; post a correcting entry', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER ledger_entries_no_update_or_delete
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_are_immutable();
CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_are_immutable();

-- What each order earned and what its refunds took back (cumulative), for refunds.
CREATE TABLE orders (
    order_id        text        PRIMARY KEY,
    member_id       uuid        NOT NULL REFERENCES accounts (member_id),
    lot_id          uuid,
    earned_points   bigint      NOT NULL,
    total_minor     bigint      NOT NULL,
    refunded_minor  bigint      NOT NULL DEFAULT 0,
    reversed_points bigint      NOT NULL DEFAULT 0,
    refund_ids      text[]      NOT NULL DEFAULT '{}',
    multiplier      numeric     NOT NULL,
    purchased_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Local projection of tier.changed: the member's current points multiplier.
CREATE TABLE tier_multipliers (
    member_id   uuid        PRIMARY KEY,
    tier        text        NOT NULL,
    multiplier  numeric     NOT NULL CHECK (multiplier >= 0),
    changed_at  timestamptz NOT NULL
);

-- Redemptions made over REST (the ledger entry's reference is the redemption id).
CREATE TABLE redemptions (
    redemption_id uuid        PRIMARY KEY,
    member_id     uuid        NOT NULL REFERENCES accounts (member_id),
    points        bigint      NOT NULL CHECK (points > 0),
    reference     text,
    redeemed_at   timestamptz NOT NULL
);
CREATE INDEX redemptions_by_member ON redemptions (member_id, redeemed_at);

-- Lock a member's account (creating it if missing), then load it with the lots a posting
-- needs, in one round trip. The load must be a statement of its own, run after the lock
-- is granted: in READ COMMITTED a single SELECT ... FOR UPDATE joined to lots would
-- return the lots as they were before the lock holder committed (stale remaining points,
-- hence overdraws). Each statement of a VOLATILE plpgsql function takes a new snapshot.
-- events_waiting tells a purchase whether events are parked under its order (saves the
-- consumer a round trip per purchase when nothing waits, the common case).
CREATE FUNCTION lock_points_account(
    p_member_id   uuid,
    p_order_id    text,
    p_order_lot   uuid,
    p_unreleased  boolean,
    p_consumer    text,
    p_wait_key    text
) RETURNS TABLE (
    debt bigint, earned bigint, reversed bigint, redeemed bigint, expired bigint,
    adjusted bigint, multiplier numeric, order_known boolean, events_waiting boolean,
    lot_id uuid, source_kind text, source_ref text, original bigint, remaining bigint,
    forfeited bigint, available_at timestamptz, expires_at timestamptz, released boolean,
    reminded boolean
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM accounts WHERE member_id = p_member_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO accounts (member_id) VALUES (p_member_id) ON CONFLICT (member_id) DO NOTHING;
        PERFORM 1 FROM accounts WHERE member_id = p_member_id FOR UPDATE;
    END IF;
    RETURN QUERY
    SELECT a.debt, a.earned, a.reversed, a.redeemed, a.expired, a.adjusted,
           COALESCE((SELECT t.multiplier FROM tier_multipliers t
                     WHERE t.member_id = a.member_id), 1),
           EXISTS (SELECT 1 FROM orders o WHERE o.order_id = p_order_id),
           EXISTS (SELECT 1 FROM parked_events pe
                   WHERE pe.consumer = p_consumer AND pe.wait_key = p_wait_key),
           l.lot_id, l.source_kind, l.source_ref, l.original, l.remaining, l.forfeited,
           l.available_at, l.expires_at, l.released, l.reminded
    FROM accounts a
    LEFT JOIN lots l ON l.member_id = a.member_id
        AND (l.remaining > 0 OR (p_unreleased AND NOT l.released) OR l.lot_id = p_order_lot)
    WHERE a.member_id = p_member_id;
END
$$;
