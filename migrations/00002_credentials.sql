-- Credentials: clients, tasks, launch tokens, challenges, agents, tokens,
-- revocations, denials, single-use assertion ids, and the audit trail.
-- Every table is tenant-owned, with the same row-level security policy.

-- +goose Up
CREATE TABLE clients (
  tenant_id    uuid        NOT NULL REFERENCES tenants(id),
  id           text        NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  kind         text        NOT NULL CHECK (kind IN ('orchestrator', 'resource-server', 'auditor')),
  name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  public_key   bytea       NOT NULL CHECK (length(public_key) = 32),
  created_at   timestamptz NOT NULL,
  disabled_at  timestamptz,
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE tasks (
  tenant_id     uuid        NOT NULL REFERENCES tenants(id),
  id            uuid        NOT NULL,
  client_id     text        NOT NULL,
  principal     text        NOT NULL CHECK (length(principal) BETWEEN 1 AND 256),
  purpose       text        NOT NULL CHECK (length(purpose) <= 1024),
  scope         text[]      NOT NULL,
  audiences     text[]      NOT NULL,
  deadline      timestamptz NOT NULL,
  created_at    timestamptz NOT NULL,
  completed_at  timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id)
);

CREATE TABLE agents (
  tenant_id      uuid        NOT NULL REFERENCES tenants(id),
  id             uuid        NOT NULL,
  task_id        uuid        NOT NULL,
  parent_id      uuid,
  ancestors      uuid[]      NOT NULL,   -- root agent first, parent last
  depth          integer     NOT NULL CHECK (depth >= 1),
  public_key     bytea       NOT NULL CHECK (length(public_key) = 32),
  scope          text[]      NOT NULL,   -- the ceiling its launch token carried
  exchanges      integer     NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL,
  last_seen_at   timestamptz NOT NULL,
  revoked_at     timestamptz,
  revocation_id  uuid,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id)
);
CREATE INDEX agents_task ON agents (tenant_id, task_id);
CREATE INDEX agents_ancestors ON agents USING gin (ancestors);

-- Launch tokens are stored only as a SHA-256 hash.
CREATE TABLE launch_tokens (
  tenant_id        uuid        NOT NULL REFERENCES tenants(id),
  token_hash       bytea       NOT NULL CHECK (length(token_hash) = 32),
  task_id          uuid        NOT NULL,
  parent_agent_id  uuid,
  depth            integer     NOT NULL CHECK (depth >= 1),
  scope            text[]      NOT NULL,
  not_after        timestamptz,          -- a sub-agent's tokens never outlive its parent's token
  created_at       timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL,
  consumed_at      timestamptz,
  PRIMARY KEY (tenant_id, token_hash),
  FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id)
);
CREATE INDEX launch_tokens_expiry ON launch_tokens (expires_at);

CREATE TABLE challenges (
  tenant_id        uuid        NOT NULL REFERENCES tenants(id),
  id               uuid        NOT NULL,
  task_id          uuid        NOT NULL,
  parent_agent_id  uuid,
  depth            integer     NOT NULL,
  scope            text[]      NOT NULL,
  not_after        timestamptz,
  public_key       bytea       NOT NULL CHECK (length(public_key) = 32),
  nonce            bytea       NOT NULL CHECK (length(nonce) = 32),
  created_at       timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL,
  consumed_at      timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX challenges_expiry ON challenges (expires_at);

CREATE TABLE tokens (
  tenant_id      uuid        NOT NULL REFERENCES tenants(id),
  jti            uuid        NOT NULL,
  client_id      text        NOT NULL,
  agent_id       uuid,                  -- NULL for a client's own token
  task_id        uuid,
  subject        text        NOT NULL,
  scope          text[]      NOT NULL,
  audiences      text[]      NOT NULL,
  issued_at      timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  renewed_from   uuid,
  revoked_at     timestamptz,
  revocation_id  uuid,
  PRIMARY KEY (tenant_id, jti)
);
CREATE INDEX tokens_agent ON tokens (tenant_id, agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX tokens_task ON tokens (tenant_id, task_id) WHERE task_id IS NOT NULL;
CREATE INDEX tokens_expiry ON tokens (expires_at);

-- Single-use assertion ids (client and agent assertions), kept until the
-- assertion would have expired anyway. The key is a hash of issuer and jti.
CREATE TABLE used_assertions (
  tenant_id   uuid        NOT NULL REFERENCES tenants(id),
  id_hash     bytea       NOT NULL CHECK (length(id_hash) = 32),
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id_hash)
);
CREATE INDEX used_assertions_expiry ON used_assertions (expires_at);

CREATE TABLE revocations (
  tenant_id      uuid        NOT NULL REFERENCES tenants(id),
  id             uuid        NOT NULL,
  cursor         bigserial   NOT NULL,
  level          text        NOT NULL CHECK (level IN ('token', 'agent', 'task', 'chain')),
  target         text        NOT NULL,
  task_id        uuid,
  reason         text        NOT NULL CHECK (length(reason) <= 256),
  revoked_by     text        NOT NULL,
  revoked_count  integer     NOT NULL,
  revoked_at     timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX revocations_cursor ON revocations (tenant_id, cursor);

CREATE TABLE denials (
  tenant_id      uuid        NOT NULL REFERENCES tenants(id),
  id             uuid        NOT NULL,
  occurred_at    timestamptz NOT NULL,
  endpoint       text        NOT NULL,
  check_name     text        NOT NULL,
  reason         text        NOT NULL,
  expected       text        NOT NULL DEFAULT '',
  presented      text        NOT NULL DEFAULT '',
  rule           text,
  revocation_id  uuid,
  client_id      text,
  agent_id       uuid,
  task_id        uuid,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX denials_time ON denials (tenant_id, occurred_at);

-- The audit trail. Events are written in the transaction of the change they
-- record and never change again. xid orders them for the hash chain: an
-- event is chained only once every transaction that could precede it has
-- ended, so appends never contend on a chain head.
CREATE TABLE audit_events (
  tenant_id      uuid        NOT NULL REFERENCES tenants(id),
  id             uuid        NOT NULL,
  xid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
  occurred_at    timestamptz NOT NULL,
  type           text        NOT NULL,
  outcome        text        NOT NULL CHECK (outcome IN ('success', 'denied')),
  actor          text        NOT NULL,
  principal      text,
  client_id      text,
  task_id        uuid,
  agent_id       uuid,
  token_id       uuid,
  denial_id      uuid,
  revocation_id  uuid,
  detail         jsonb       NOT NULL DEFAULT '{}',
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_xid ON audit_events (tenant_id, xid, id);
CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at);

-- +goose StatementBegin
CREATE FUNCTION audit_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = '42501';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_immutable();

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['clients', 'tasks', 'agents', 'launch_tokens', 'challenges', 'tokens',
                           'used_assertions', 'revocations', 'denials', 'audit_events'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = chit_current_tenant()) WITH CHECK (tenant_id = chit_current_tenant())', t || '_tenant', t);
  END LOOP;
END
$$;
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE ON clients, tasks, agents, launch_tokens, challenges, tokens TO chit_app;
GRANT SELECT, INSERT, DELETE ON used_assertions, denials TO chit_app;
GRANT DELETE ON launch_tokens, challenges, tokens TO chit_app;
GRANT SELECT, INSERT ON revocations, audit_events TO chit_app;
GRANT USAGE ON SEQUENCE revocations_cursor_seq TO chit_app;

-- +goose Down
DROP TABLE audit_events, denials, revocations, used_assertions, tokens, challenges, launch_tokens, agents, tasks, clients;
DROP FUNCTION audit_events_immutable();
