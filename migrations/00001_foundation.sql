-- Foundation: the application role, the tenant directory and signing keys.
-- Every tenant-owned table carries tenant_id and a row-level security policy
-- keyed on the per-transaction setting chit.tenant_id (see internal/pgstore).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chit_app') THEN
    CREATE ROLE chit_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  -- The login role that runs the server must be able to SET ROLE chit_app.
  IF NOT pg_has_role(current_user, 'chit_app', 'MEMBER') THEN
    EXECUTE format('GRANT chit_app TO %I', current_user);
  END IF;
END
$$;
-- +goose StatementEnd

GRANT USAGE ON SCHEMA public TO chit_app;
-- readyz compares the applied version with the binary's.
GRANT SELECT ON goose_db_version TO chit_app;

-- The tenant a transaction is scoped to; NULL (no rows) when unset, so a
-- query that forgets to scope itself sees nothing.
CREATE FUNCTION chit_current_tenant() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('chit.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
  id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  slug               text        NOT NULL UNIQUE
                                 CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  trust_domain       text        NOT NULL UNIQUE CHECK (length(trust_domain) BETWEEN 1 AND 255),
  token_ttl_seconds  integer     NOT NULL DEFAULT 300 CHECK (token_ttl_seconds BETWEEN 30 AND 3600),
  max_renewals       integer     NOT NULL DEFAULT 10  CHECK (max_renewals BETWEEN 0 AND 10000),
  max_depth          integer     NOT NULL DEFAULT 3   CHECK (max_depth BETWEEN 1 AND 16),
  liveness_seconds   integer     NOT NULL DEFAULT 90  CHECK (liveness_seconds BETWEEN 10 AND 86400),
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The directory is readable without a tenant scope (requests name their
-- tenant by slug); a tenant's settings change only inside its own scope.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_directory ON tenants FOR SELECT USING (true);
CREATE POLICY tenants_create ON tenants FOR INSERT WITH CHECK (true);
CREATE POLICY tenants_own ON tenants FOR UPDATE
  USING (id = chit_current_tenant()) WITH CHECK (id = chit_current_tenant());
GRANT SELECT, INSERT, UPDATE ON tenants TO chit_app;

-- Ed25519 signing keys. The private half is sealed (AEAD under the
-- key-encryption key, bound to tenant and kid) and destroyed once no token
-- it signed can still be valid; the public half is kept for ever.
CREATE TABLE signing_keys (
  tenant_id           uuid        NOT NULL REFERENCES tenants(id),
  kid                 text        NOT NULL CHECK (kid ~ '^[A-Za-z0-9_-]{43}$'),
  public_key          bytea       NOT NULL CHECK (length(public_key) = 32),
  sealed_private_key  bytea,
  kek_id              text        NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  retired_at          timestamptz,
  publish_until       timestamptz,
  PRIMARY KEY (tenant_id, kid),
  CHECK ((retired_at IS NULL) = (publish_until IS NULL)),
  CHECK (publish_until IS NULL OR publish_until >= retired_at)
);
-- At most one active (signing) key per tenant.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE retired_at IS NULL;

ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY signing_keys_tenant ON signing_keys
  USING (tenant_id = chit_current_tenant()) WITH CHECK (tenant_id = chit_current_tenant());
GRANT SELECT, INSERT, UPDATE ON signing_keys TO chit_app;

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE tenants;
DROP FUNCTION chit_current_tenant();
