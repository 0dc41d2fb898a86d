-- tier-svc: the ladder (versioned), member tier state and the dated contributions that make
-- up each member's rolling qualifying value. No personal data: members are known by id only.

-- Every ladder ops ever stored; the current ladder is the highest version. With no row the
-- service uses the built-in default ladder (domain.default_ladder).
CREATE TABLE ladder_versions (
    version     bigserial   PRIMARY KEY,
    definition  jsonb       NOT NULL,
    changed_by  text        NOT NULL,
    changed_at  timestamptz NOT NULL
);

-- A member's current tier and when it was reached (protection runs from reached_at).
CREATE TABLE member_tiers (
    member_id    uuid        PRIMARY KEY,
    tier_code    text        NOT NULL,
    reached_at   timestamptz NOT NULL,
    -- Which event enrolled the member: member.registered, or a purchase / points credit
    -- seen before the registration (implicit enrolment).
    enrolled_by  text        NOT NULL,
    enrolled_at  timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX member_tiers_tier ON member_tiers (tier_code);

-- Member purchases seen, so refunds can be dated at their purchase and capped at its total.
CREATE TABLE qualifying_orders (
    order_id        text        PRIMARY KEY,
    member_id       uuid        NOT NULL,
    purchased_at    timestamptz NOT NULL,
    total_minor     bigint      NOT NULL CHECK (total_minor >= 0),
    refunded_minor  bigint      NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0)
);
CREATE INDEX qualifying_orders_member ON qualifying_orders (member_id);

-- Refunds applied (a refund id delivered again under another event id counts once).
CREATE TABLE order_refunds (
    order_id      text        NOT NULL REFERENCES qualifying_orders (order_id),
    refund_id     text        NOT NULL,
    amount_minor  bigint      NOT NULL CHECK (amount_minor > 0),
    refunded_at   timestamptz NOT NULL,
    PRIMARY KEY (order_id, refund_id)
);

-- Dated changes of the qualifying value, kept for every metric so that switching the
-- ladder's metric takes effect on the history already seen.
--   kind: purchase | refund (orders topic), points_earned | points_reversed (points topic)
--   source_id: order id, "<order id>/<refund id>", lot id, "<order id>/<refund id>"
CREATE TABLE contributions (
    id           bigserial   PRIMARY KEY,
    member_id    uuid        NOT NULL,
    metric       text        NOT NULL CHECK (metric IN ('spend', 'points', 'orders')),
    kind         text        NOT NULL,
    source_id    text        NOT NULL,
    order_id     text,
    counts_at    timestamptz NOT NULL,
    value        bigint      NOT NULL,
    recorded_at  timestamptz NOT NULL,
    UNIQUE (metric, kind, source_id)
);
CREATE INDEX contributions_member_window ON contributions (member_id, metric, counts_at);
CREATE INDEX contributions_points_order ON contributions (member_id, order_id)
    WHERE metric = 'points' AND order_id IS NOT NULL;
