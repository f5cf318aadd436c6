-- Governance policy (Casbin, see tenants/policy): what each orchestrator may
-- put in a task (scope patterns and audiences), which clients may introspect
-- or read the revocation feed, and console users' roles. Both tables are
-- tenant-owned with the usual row-level security policy; a change notifies
-- every replica on channel chit_policy (sent by the code, in the same
-- transaction, so it fires only on commit).

-- +goose Up
CREATE TABLE policy_grants (
  tenant_id   uuid        NOT NULL REFERENCES tenants(id),
  client_id   text        NOT NULL,
  action      text        NOT NULL CHECK (action IN ('scope', 'audience', 'introspect', 'feed')),
  -- A scope pattern (printable ASCII, `*` only last), an audience (absolute
  -- http(s) URI) or, for introspect and feed, `*`.
  object      text        NOT NULL CHECK (length(object) BETWEEN 1 AND 512 AND object !~ '[[:space:]"\\]'),
  granted_at  timestamptz NOT NULL,
  granted_by  text        NOT NULL CHECK (length(granted_by) BETWEEN 1 AND 256),
  PRIMARY KEY (tenant_id, client_id, action, object),
  FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id)
);

-- Console roles. user_id is the console user's opaque id (never an e-mail
-- address: the id appears in audit events).
CREATE TABLE console_roles (
  tenant_id   uuid        NOT NULL REFERENCES tenants(id),
  user_id     text        NOT NULL CHECK (user_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
  role        text        NOT NULL CHECK (role IN ('admin', 'auditor', 'viewer')),
  granted_at  timestamptz NOT NULL,
  granted_by  text        NOT NULL CHECK (length(granted_by) BETWEEN 1 AND 256),
  PRIMARY KEY (tenant_id, user_id, role)
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['policy_grants', 'console_roles'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = chit_current_tenant()) WITH CHECK (tenant_id = chit_current_tenant())', t || '_tenant', t);
  END LOOP;
END
$$;
-- +goose StatementEnd

GRANT SELECT, INSERT, DELETE ON policy_grants, console_roles TO chit_app;

-- +goose Down
DROP TABLE console_roles, policy_grants;
