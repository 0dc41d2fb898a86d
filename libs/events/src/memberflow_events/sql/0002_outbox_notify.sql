-- Wakes the outbox relays when a transaction that wrote events commits. PostgreSQL
-- delivers a NOTIFY at commit, once per channel and transaction however many statements
-- raised it, so a relay needs to poll only as a fallback.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_written AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
