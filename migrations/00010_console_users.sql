-- Console users and their sessions. A user is one person (one e-mail
-- address, one password) who may belong to several tenants; the tables are
-- therefore global, not tenant-owned. What a user may do in a tenant is
-- governance: roles live in console_roles (tenant-owned, Casbin), and a
-- membership without a role shows nothing.

-- +goose Up
CREATE TABLE console_users (
  id             uuid        PRIMARY KEY,
  -- The address as typed (shown in the console) and its lower-case form
  -- (how it is looked up). Never written into audit events: the id is.
  email          text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  email_key      text        NOT NULL UNIQUE CHECK (email_key = lower(email)),
  -- argon2id in PHC string form; never the password.
  password_hash  text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
  created_at     timestamptz NOT NULL,
  -- Lockout: failed attempts since the last success, and until when the
  -- account refuses every attempt.
  failed_logins  integer     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
  locked_until   timestamptz,
  disabled_at    timestamptz
);

CREATE TABLE console_memberships (
  user_id     uuid        NOT NULL REFERENCES console_users(id),
  tenant_id   uuid        NOT NULL REFERENCES tenants(id),
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (user_id, tenant_id)
);

-- Server-side sessions. The cookie carries a random token; only its SHA-256
-- is stored, so a copy of this table opens no session.
CREATE TABLE console_sessions (
  id_hash       bytea       PRIMARY KEY CHECK (length(id_hash) = 32),
  user_id       uuid        NOT NULL REFERENCES console_users(id),
  created_at    timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  ended_at      timestamptz
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

GRANT SELECT, INSERT, UPDATE ON console_users TO chit_app;
GRANT SELECT, INSERT ON console_memberships TO chit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON console_sessions TO chit_app;

-- +goose Down
DROP TABLE console_sessions, console_memberships, console_users;
