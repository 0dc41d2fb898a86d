-- analytics-svc projections. Fact tables are append-only and keyed by the event's own
-- identity (event_id, or order_id/refund_id/member_id), so a redelivered or replayed
-- event changes nothing; KPIs are SQL aggregates over them at query time.

CREATE TABLE fact_purchases (
    order_id     text        PRIMARY KEY,
    event_id     uuid        NOT NULL,
    member_id    uuid,
    occurred_at  timestamptz NOT NULL,
    total_minor  bigint      NOT NULL,
    currency     text        NOT NULL,
    channel      text        NOT NULL
);
CREATE INDEX fact_purchases_time ON fact_purchases (occurred_at);
CREATE INDEX fact_purchases_member ON fact_purchases (member_id, occurred_at);

CREATE TABLE fact_refunds (
    refund_id    text        PRIMARY KEY,
    event_id     uuid        NOT NULL,
    order_id     text        NOT NULL,
    member_id    uuid,
    occurred_at  timestamptz NOT NULL,
    amount_minor bigint      NOT NULL
);
CREATE INDEX fact_refunds_order ON fact_refunds (order_id);

-- One row per member: the earliest registration / erasure seen (LEAST keeps it
-- independent of arrival order).
CREATE TABLE fact_registrations (
    member_id     uuid        PRIMARY KEY,
    event_id      uuid        NOT NULL,
    registered_at timestamptz NOT NULL
);
CREATE INDEX fact_registrations_time ON fact_registrations (registered_at);

CREATE TABLE fact_erasures (
    member_id  uuid        PRIMARY KEY,
    event_id   uuid        NOT NULL,
    erased_at  timestamptz NOT NULL
);

CREATE TABLE fact_activities (
    event_id     uuid        PRIMARY KEY,
    member_id    uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    kind         text        NOT NULL
);
CREATE INDEX fact_activities_time ON fact_activities (occurred_at);

CREATE TABLE fact_feedback (
    event_id     uuid        PRIMARY KEY,
    member_id    uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    nps_score    smallint    NOT NULL
);
CREATE INDEX fact_feedback_time ON fact_feedback (occurred_at);

-- Points movements. `delta` is the signed effect on the member's ledger balance
-- (earned +, adjusted ±, redeemed/reversed/expired −, released 0); `lot_points` is what an
-- earned lot holds (points − debt repaid), with `available_at` for the pending split.
CREATE TABLE fact_points (
    event_id      uuid        PRIMARY KEY,
    member_id     uuid,
    occurred_at   timestamptz NOT NULL,
    kind          text        NOT NULL,
    points        bigint      NOT NULL,
    delta         bigint      NOT NULL,
    lot_points    bigint      NOT NULL,
    lot_id        uuid,
    available_at  timestamptz
);
CREATE INDEX fact_points_time ON fact_points (occurred_at);
CREATE INDEX fact_points_lot ON fact_points (lot_id) WHERE lot_id IS NOT NULL;

CREATE TABLE fact_tier_changes (
    event_id     uuid        PRIMARY KEY,
    member_id    uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    from_tier    text,
    to_tier      text        NOT NULL,
    direction    text        NOT NULL
);
CREATE INDEX fact_tier_changes_member ON fact_tier_changes (member_id, occurred_at);

CREATE TABLE fact_exposures (
    event_id     uuid        PRIMARY KEY,
    campaign_id  uuid        NOT NULL,
    member_id    uuid        NOT NULL,
    exposure_group text      NOT NULL,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX fact_exposures_campaign ON fact_exposures (campaign_id, member_id, occurred_at);

-- Orders with their refunds subtracted (a refund that arrived first simply waits here
-- for its purchase: the join is made at query time).
CREATE VIEW net_orders AS
SELECT p.order_id, p.member_id, p.occurred_at, p.total_minor,
       coalesce(r.refunded, 0) AS refunded_minor,
       p.total_minor - coalesce(r.refunded, 0) AS net_minor
FROM fact_purchases p
LEFT JOIN (
    SELECT order_id, sum(amount_minor) AS refunded FROM fact_refunds GROUP BY order_id
) r ON r.order_id = p.order_id;

-- ---------- outputs of the scheduled jobs (not event projections; see docs) ----------

CREATE TABLE rfm_scores (
    member_id       uuid        PRIMARY KEY,
    recency_days    integer     NOT NULL,
    frequency       integer     NOT NULL,
    monetary_minor  bigint      NOT NULL,
    r               smallint    NOT NULL,
    f               smallint    NOT NULL,
    m               smallint    NOT NULL,
    fm              smallint    NOT NULL,
    segment_code    smallint    NOT NULL,  -- index into analytics_svc.rfm.SEGMENTS
    scored_at       timestamptz NOT NULL
);
CREATE INDEX rfm_scores_segment ON rfm_scores (segment_code);

CREATE TABLE clv_models (
    id              bigserial   PRIMARY KEY,
    fitted_at       timestamptz NOT NULL,
    as_of_day       integer     NOT NULL,  -- UTC day number (days since 1970-01-01)
    members         integer     NOT NULL,
    repeat_buyers   integer     NOT NULL,
    bgnbd           jsonb       NOT NULL,
    gamma_gamma     jsonb,
    settings        jsonb       NOT NULL,
    seconds         double precision NOT NULL
);

-- Per-member predictions of the latest fit (replaced as a whole at each refit).
-- NaN marks a value the model could not give (e.g. Gamma-Gamma q <= 1).
CREATE TABLE clv_predictions (
    member_id           uuid             PRIMARY KEY,
    model_id            bigint           NOT NULL,
    x                   integer          NOT NULL,
    t_x                 integer          NOT NULL,
    t_cal               integer          NOT NULL,
    mean_repeat_minor   double precision NOT NULL,
    p_alive             double precision NOT NULL,
    expected_purchases  double precision NOT NULL,
    expected_spend      double precision NOT NULL,
    predicted_clv       double precision NOT NULL,
    historical_clv      bigint           NOT NULL
);
CREATE INDEX clv_predictions_value ON clv_predictions (predicted_clv);

-- Churn-risk episodes: open until the member's next purchase re-arms the rule.
CREATE TABLE churn_state (
    member_id          uuid             PRIMARY KEY,
    in_episode         boolean          NOT NULL,
    last_purchase_day  integer          NOT NULL,
    at_risk            boolean          NOT NULL,
    score              double precision NOT NULL,
    reason             smallint         NOT NULL,  -- analytics_svc.churn.ChurnReason
    evaluated_at       timestamptz      NOT NULL
);
