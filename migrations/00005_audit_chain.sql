-- The per-tenant hash chain over audit events. Events are written in their
-- own transactions without touching any shared row (no contention between
-- replicas); the chainer appends links here in (xid, id) order, and only for
-- events whose transaction id is older than every transaction still running,
-- so no later event can ever sort before a link already written.

-- +goose Up
CREATE TABLE audit_chain (
  tenant_id   uuid        NOT NULL REFERENCES tenants(id),
  seq         bigint      NOT NULL CHECK (seq >= 1),
  event_id    uuid        NOT NULL,
  event_xid   xid8        NOT NULL,
  prev_hash   bytea       NOT NULL CHECK (length(prev_hash) = 32),
  hash        bytea       NOT NULL CHECK (length(hash) = 32),
  chained_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, seq),
  UNIQUE (tenant_id, event_id)
);

ALTER TABLE audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_chain_tenant ON audit_chain
  USING (tenant_id = chit_current_tenant()) WITH CHECK (tenant_id = chit_current_tenant());

CREATE TRIGGER audit_chain_no_update BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_immutable();

GRANT SELECT, INSERT ON audit_chain TO chit_app;

-- +goose Down
DROP TABLE audit_chain;
