-- The console's read model (oauth/inventory) lists agents, tasks, denials and
-- revocations newest first, a keyset page at a time, and counts the last hour
-- and day for its overview. One index per listing and filter, in the order
-- the listing reads, so a page never sorts or scans a tenant's history.

-- +goose Up
CREATE INDEX agents_created ON agents (tenant_id, created_at DESC, id DESC);
-- Agents are never purged; the live ones are a few recent rows among many
-- revoked ones.
CREATE INDEX agents_unrevoked ON agents (tenant_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;
-- Replaces agents_task: the same lookups, and a task's agents in page order.
DROP INDEX agents_task;
CREATE INDEX agents_task ON agents (tenant_id, task_id, created_at DESC, id DESC);

CREATE INDEX tasks_created ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX tasks_open ON tasks (tenant_id, created_at DESC, id DESC) WHERE completed_at IS NULL;
CREATE INDEX tasks_principal ON tasks (tenant_id, principal, created_at DESC, id DESC);
CREATE INDEX tasks_completed ON tasks (tenant_id, completed_at) WHERE completed_at IS NOT NULL;

-- Renewals (a token revoked by its own agent when it is replaced) are most
-- of the rows and routine; the console lists the others, and this index
-- leaves the renewal path's inserts alone.
CREATE INDEX revocations_listed ON revocations (tenant_id, revoked_at DESC, id DESC)
  WHERE level <> 'token' OR revoked_by NOT LIKE 'agent:%';

DROP INDEX denials_time;
CREATE INDEX denials_time ON denials (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX denials_check ON denials (tenant_id, check_name, occurred_at DESC, id DESC);
CREATE INDEX denials_task ON denials (tenant_id, task_id, occurred_at DESC, id DESC) WHERE task_id IS NOT NULL;
CREATE INDEX denials_agent ON denials (tenant_id, agent_id, occurred_at DESC, id DESC) WHERE agent_id IS NOT NULL;
CREATE INDEX denials_client ON denials (tenant_id, client_id, occurred_at DESC, id DESC) WHERE client_id IS NOT NULL;

-- +goose Down
DROP INDEX denials_time, denials_check, denials_task, denials_agent, denials_client;
CREATE INDEX denials_time ON denials (tenant_id, occurred_at);
DROP INDEX revocations_listed;
DROP INDEX tasks_created, tasks_open, tasks_principal, tasks_completed;
DROP INDEX agents_created, agents_unrevoked, agents_task;
CREATE INDEX agents_task ON agents (tenant_id, task_id);
