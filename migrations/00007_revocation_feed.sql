-- The revocation feed is ordered by (xid, cursor) and served only below the
-- oldest running transaction, so a reader that has seen a position never
-- misses a revocation committed later with a smaller cursor.

-- +goose Up
ALTER TABLE revocations ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX revocations_feed ON revocations (tenant_id, xid, cursor);

-- +goose Down
DROP INDEX revocations_feed;
ALTER TABLE revocations DROP COLUMN xid;
