-- campaign-svc: campaigns, the member projection built from events, exposures, coupons.

CREATE TABLE campaigns (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    trigger_kind  text NOT NULL,
    definition    jsonb NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'paused', 'ended')),
    budget_limit  bigint CHECK (budget_limit IS NULL OR budget_limit >= 1),
    budget_spent  bigint NOT NULL DEFAULT 0,
    blast_done_at timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    -- the budget can never be overspent, whatever the code does
    CHECK (budget_limit IS NULL OR budget_spent <= budget_limit)
);
CREATE INDEX campaigns_trigger_idx ON campaigns (trigger_kind) WHERE status = 'active';
CREATE INDEX campaigns_listing_idx ON campaigns (created_at, id);

-- What campaign-svc knows about a member, only from events (no name, email or phone).
CREATE TABLE member_projections (
    member_id      uuid PRIMARY KEY,
    birth_month    smallint CHECK (birth_month BETWEEN 1 AND 12),
    birth_day      smallint CHECK (birth_day BETWEEN 1 AND 31),
    time_zone      text NOT NULL DEFAULT 'UTC',
    consents       jsonb NOT NULL DEFAULT '{}',
    attributes     jsonb NOT NULL DEFAULT '{}',
    tier           text,
    rfm_segment    text,
    purchase_count integer NOT NULL DEFAULT 0,
    -- set by member.registered; other events about a member not yet registered are parked
    registered_at  timestamptz,
    erased_at      timestamptz,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX member_projections_birthday_idx
    ON member_projections (birth_month, birth_day) WHERE erased_at IS NULL;

-- Orders already counted towards a member's purchase count (an order re-sent under a new
-- event id is not a second purchase).
CREATE TABLE counted_orders (
    member_id uuid NOT NULL,
    order_id  text NOT NULL,
    PRIMARY KEY (member_id, order_id)
);

-- One row per member per occasion (birthday:<year>, welcome, blast, purchase:<n>,
-- event:<event id>), for both groups: the unique key is "once per occasion".
CREATE TABLE exposures (
    id           uuid PRIMARY KEY,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    member_id    uuid NOT NULL,
    grp          text NOT NULL CHECK (grp IN ('treatment', 'control')),
    occasion_key text NOT NULL,
    exposed_at   timestamptz NOT NULL,
    budget_cost  bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX exposures_occasion_key ON exposures (campaign_id, member_id, occasion_key);
CREATE INDEX exposures_member_idx ON exposures (campaign_id, member_id, exposed_at);
CREATE INDEX exposures_member_only_idx ON exposures (member_id);

CREATE TABLE coupons (
    id             uuid PRIMARY KEY,
    campaign_id    uuid NOT NULL REFERENCES campaigns (id),
    member_id      uuid NOT NULL,
    code           text NOT NULL,
    terms          jsonb NOT NULL,
    status         text NOT NULL CHECK (status IN ('issued', 'redeemed', 'expired', 'voided')),
    valid_from     timestamptz NOT NULL,
    valid_until    timestamptz NOT NULL,
    issued_at      timestamptz NOT NULL,
    redeemed_at    timestamptz,
    order_id       text,
    discount_minor bigint
);
-- codes are stored normalised (upper case, grouped), so this is unique on the normal form
CREATE UNIQUE INDEX coupons_code_key ON coupons (code);
CREATE INDEX coupons_member_idx ON coupons (member_id, issued_at, id);
CREATE INDEX coupons_campaign_idx ON coupons (campaign_id, status);
