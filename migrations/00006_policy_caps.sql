-- Per-orchestrator caps (tenants/policy): max_task_ttl (object: seconds) and
-- max_depth (object: a depth), stored beside the other governance rules.
-- They only tighten the tenant's settings.
--
-- Introspection now needs the introspect rule, which a resource server is
-- given when it is created; resource servers created before this migration
-- get introspect and feed here, so an upgrade refuses none of them. (This
-- backfill has no audit event of its own: the chain is appended by the
-- application; the rules show granted_by 'migration'.)

-- +goose Up
ALTER TABLE policy_grants DROP CONSTRAINT policy_grants_action_check;
ALTER TABLE policy_grants ADD CONSTRAINT policy_grants_action_check
  CHECK (action IN ('scope', 'audience', 'introspect', 'feed', 'max_task_ttl', 'max_depth'));

-- +goose StatementBegin
DO $$
DECLARE tid uuid;
BEGIN
  FOR tid IN SELECT id FROM tenants LOOP
    PERFORM set_config('chit.tenant_id', tid::text, true);
    INSERT INTO policy_grants (tenant_id, client_id, action, object, granted_at, granted_by)
    SELECT c.tenant_id, c.id, a.action, '*', now(), 'migration'
      FROM clients c CROSS JOIN (VALUES ('introspect'), ('feed')) AS a(action)
     WHERE c.tenant_id = tid AND c.kind = 'resource-server'
    ON CONFLICT DO NOTHING;
  END LOOP;
  PERFORM set_config('chit.tenant_id', '', true);
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE tid uuid;
BEGIN
  FOR tid IN SELECT id FROM tenants LOOP
    PERFORM set_config('chit.tenant_id', tid::text, true);
    DELETE FROM policy_grants WHERE tenant_id = tid AND action IN ('max_task_ttl', 'max_depth');
  END LOOP;
  PERFORM set_config('chit.tenant_id', '', true);
END
$$;
-- +goose StatementEnd
ALTER TABLE policy_grants DROP CONSTRAINT policy_grants_action_check;
ALTER TABLE policy_grants ADD CONSTRAINT policy_grants_action_check
  CHECK (action IN ('scope', 'audience', 'introspect', 'feed'));
