-- The relay deletes what it has published (decision 0001): the rows left in the outbox are
-- waiting, but for those a replica of an earlier build marked published, which the leader
-- deletes. So the claim walks the primary key, and the partial index of waiting rows only
-- cost every event written one more index entry (a first refit writes 1.4 million).
-- `outbox_published_at` and the column stay while an earlier build may still mark rows.
DROP INDEX IF EXISTS outbox_unpublished;
