-- Per-orchestrator caps (tenants/policy): max_task_ttl (object: seconds) and
-- max_depth (object: a depth), stored beside the other governance rules.
-- They only tighten the tenant's settings.

-- +goose Up
ALTER TABLE policy_grants DROP CONSTRAINT policy_grants_action_check;
ALTER TABLE policy_grants ADD CONSTRAINT policy_grants_action_check
  CHECK (action IN ('scope', 'audience', 'introspect', 'feed', 'max_task_ttl', 'max_depth'));

-- +goose Down
DELETE FROM policy_grants WHERE action IN ('max_task_ttl', 'max_depth');
ALTER TABLE policy_grants DROP CONSTRAINT policy_grants_action_check;
ALTER TABLE policy_grants ADD CONSTRAINT policy_grants_action_check
  CHECK (action IN ('scope', 'audience', 'introspect', 'feed'));
