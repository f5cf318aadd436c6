-- Signed checkpoints seal the audit chain: the tenant's signing key signs
-- {tenant, seq, head hash, time}. Append-only like the chain.

-- +goose Up
CREATE TABLE audit_checkpoints (
  tenant_id   uuid        NOT NULL REFERENCES tenants(id),
  seq         bigint      NOT NULL CHECK (seq >= 1),
  head_hash   bytea       NOT NULL CHECK (length(head_hash) = 32),
  sealed_at   timestamptz NOT NULL,
  kid         text        NOT NULL,
  public_key  bytea       NOT NULL CHECK (length(public_key) = 32),
  signature   bytea       NOT NULL CHECK (length(signature) = 64),
  PRIMARY KEY (tenant_id, seq)
);

ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_checkpoints_tenant ON audit_checkpoints
  USING (tenant_id = chit_current_tenant()) WITH CHECK (tenant_id = chit_current_tenant());
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_immutable();
GRANT SELECT, INSERT ON audit_checkpoints TO chit_app;

-- +goose Down
DROP TABLE audit_checkpoints;
