-- Shared plumbing tables, created in every service's own database.

-- Events written in the same transaction as the state change that caused them.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    record_key    text        NOT NULL,
    event_type    text        NOT NULL,
    event_version integer     NOT NULL,
    value         bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Events this service's consumer has applied: the exactly-once guard.
CREATE TABLE inbox (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Events that arrived before what they depend on (e.g. a refund before its purchase).
CREATE TABLE parked_events (
    id            bigserial PRIMARY KEY,
    consumer      text        NOT NULL,
    wait_key      text        NOT NULL,
    event_id      uuid        NOT NULL,
    value         bytea       NOT NULL,
    reason        text        NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer, event_id)
);
CREATE INDEX parked_events_wait ON parked_events (consumer, wait_key);

-- Responses of POST requests that carried an Idempotency-Key.
CREATE TABLE idempotency_keys (
    scope         text        NOT NULL,
    key           text        NOT NULL,
    request_hash  text        NOT NULL,
    status_code   integer     NOT NULL,
    body          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
