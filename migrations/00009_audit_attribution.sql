-- Attribution queries ("what did any agent do on behalf of principal P in
-- the last 30 days"): one index per filter, newest first.

-- +goose Up
CREATE INDEX audit_events_principal ON audit_events (tenant_id, principal, occurred_at DESC, id DESC) WHERE principal IS NOT NULL;
CREATE INDEX audit_events_agent ON audit_events (tenant_id, agent_id, occurred_at DESC, id DESC) WHERE agent_id IS NOT NULL;
CREATE INDEX audit_events_task ON audit_events (tenant_id, task_id, occurred_at DESC, id DESC) WHERE task_id IS NOT NULL;
CREATE INDEX audit_events_client ON audit_events (tenant_id, client_id, occurred_at DESC, id DESC) WHERE client_id IS NOT NULL;
CREATE INDEX audit_events_type ON audit_events (tenant_id, type, occurred_at DESC, id DESC);
DROP INDEX audit_events_time;
CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at DESC, id DESC);

-- +goose Down
DROP INDEX audit_events_principal, audit_events_agent, audit_events_task, audit_events_client, audit_events_type, audit_events_time;
CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at);
