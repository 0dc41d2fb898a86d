-- member-svc: members, consents (current state and history), activity and feedback intake.
-- The only database in memberflow that holds personal data (name, email, phone, birthday).

CREATE TABLE members (
    id                        uuid        PRIMARY KEY,
    external_id               text        UNIQUE,
    status                    text        NOT NULL DEFAULT 'active'
                                          CHECK (status IN ('active', 'erased')),
    email                     text        UNIQUE CHECK (email = lower(email)),
    phone                     text        CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
    first_name                text,
    last_name                 text,
    birthday                  date,
    time_zone                 text        NOT NULL DEFAULT 'UTC',
    attributes                jsonb       NOT NULL DEFAULT '{}'::jsonb,
    referral_code             text        UNIQUE,
    referred_by               uuid        REFERENCES members (id),
    -- Hash of the registration request: a repeated registration with the same external id
    -- is a retry (same hash) or a conflict (another hash).
    registration_fingerprint  text,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    erased_at                 timestamptz,
    CHECK (referred_by IS DISTINCT FROM id)
);
-- Keyset pagination walks (created_at, id).
CREATE INDEX members_created_at_id ON members (created_at, id);
CREATE INDEX members_phone ON members (phone) WHERE phone IS NOT NULL;
CREATE INDEX members_referred_by ON members (referred_by) WHERE referred_by IS NOT NULL;

-- Current consent per channel.
CREATE TABLE member_consents (
    member_id   uuid        NOT NULL REFERENCES members (id),
    channel     text        NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'mail')),
    granted     boolean     NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (member_id, channel)
);

-- Every consent change, with when and through whom it happened (proof of consent).
CREATE TABLE consent_changes (
    id          bigserial   PRIMARY KEY,
    member_id   uuid        NOT NULL REFERENCES members (id),
    channel     text        NOT NULL,
    granted     boolean     NOT NULL,
    source      text        NOT NULL,
    changed_at  timestamptz NOT NULL
);
CREATE INDEX consent_changes_member ON consent_changes (member_id, id);

-- Activity intake log (each row was also emitted as member.activity).
CREATE TABLE activities (
    id           uuid        PRIMARY KEY,
    member_id    uuid        NOT NULL REFERENCES members (id),
    kind         text        NOT NULL,
    channel      text,
    store_id     text,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE INDEX activities_member ON activities (member_id, occurred_at);

-- NPS feedback intake log (each row was also emitted as member.feedback).
CREATE TABLE feedback (
    id           uuid        PRIMARY KEY,
    member_id    uuid        NOT NULL REFERENCES members (id),
    nps_score    smallint    NOT NULL CHECK (nps_score BETWEEN 0 AND 10),
    comment      text,
    received_at  timestamptz NOT NULL
);
CREATE INDEX feedback_member ON feedback (member_id, received_at);
