package inventory

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/oauth"
)

// Agent is one agent instance as the console lists it.
type Agent struct {
	ID        uuid.UUID
	TaskID    uuid.UUID
	ParentID  *uuid.UUID // nil for a root agent (launched by the orchestrator)
	Depth     int        // 1 for a root agent
	ClientID  string     // the orchestrator running its task
	Principal string     // on whose behalf the task runs
	SPIFFEID  string
	Scope     []string // the ceiling its launch token carried, sorted
	CreatedAt time.Time
	// LastSeenAt is its last heartbeat (any authenticated call, or an
	// exchange); HeartbeatAge is how long ago that was.
	LastSeenAt   time.Time
	HeartbeatAge time.Duration
	Status       AgentStatus
	// RevokedAt and RevocationID say what ended its authority: its own
	// revocation, the revocation of an agent above it (RevokedAncestor), or
	// its task's completion. Nil while it holds authority or merely expired.
	RevokedAt       *time.Time
	RevocationID    *uuid.UUID
	RevokedAncestor *uuid.UUID
	LiveTokens      int // its tokens a resource server accepts now
}

// AgentFilter narrows Agents; zero fields do not filter.
type AgentFilter struct {
	// Status: AgentLive matches silent agents too (both hold authority),
	// AgentRevoked matches lineage-revoked ones too.
	Status AgentStatus
	TaskID uuid.UUID
}

// AgentPage is one page of agents, newest first.
type AgentPage struct {
	Agents []Agent
	Next   string // the next page's cursor; "" on the last page
}

// Hop is one agent of a delegation chain and how it narrowed the scope it
// was handed.
type Hop struct {
	Agent
	// Narrowed are the scopes the hop above held (the task's, for a root
	// agent) that this agent's launch token left out.
	Narrowed []string
}

// AgentDetail is an agent with its lineage, tokens and children.
type AgentDetail struct {
	Agent
	// Task is the task it works on: its principal and scope head the chain.
	Task Task
	// Chain is the delegation lineage under the task's principal: the root
	// agent first, this agent last.
	Chain []Hop
	// Tokens are its tokens still kept (oauth.TokenRetention past expiry),
	// newest first, at most MaxAgentTokens.
	Tokens          []Token
	TokensTruncated bool
	// Children are the sub-agents it launched, oldest first, at most MaxChildren.
	Children          []Agent
	ChildrenTruncated bool
}

// Bounds of one agent's detail.
const (
	MaxAgentTokens = 200
	MaxChildren    = 200
)

// The SQL definition of an agent's status, over `a` (agents), `tk` (its
// task) and `anc` (the earliest revoked agent among its ancestors, if any),
// mirroring oauth's agentUsable and live check.
const (
	agentRevokedSQL   = `(a.revoked_at IS NOT NULL OR tk.completed_at IS NOT NULL)`
	holdsAuthoritySQL = `(a.revoked_at IS NULL AND tk.completed_at IS NULL AND anc.id IS NULL AND tk.deadline > @now)`
	agentStatusSQL    = `CASE WHEN ` + agentRevokedSQL + ` THEN 'revoked'
	                          WHEN anc.id IS NOT NULL THEN 'lineage_revoked'
	                          WHEN tk.deadline <= @now THEN 'expired'
	                          WHEN a.last_seen_at < @quiet_before THEN 'silent'
	                          ELSE 'live' END`

	agentSelect = `
	SELECT a.id, a.task_id, a.parent_id, a.depth, a.scope, a.created_at, a.last_seen_at, tk.client_id, tk.principal,
	       ` + agentStatusSQL + `,
	       coalesce(a.revoked_at, anc.revoked_at, tk.completed_at), coalesce(a.revocation_id, anc.revocation_id), anc.id,
	       CASE WHEN ` + holdsAuthoritySQL + ` THEN
	         (SELECT count(*) FROM tokens t WHERE t.tenant_id = a.tenant_id AND t.agent_id = a.id
	             AND t.revoked_at IS NULL AND t.expires_at > @now)
	       ELSE 0 END` + agentFrom

	// agentFrom joins what an agent's status depends on.
	agentFrom = `
	  FROM agents a
	  JOIN tasks tk ON tk.tenant_id = a.tenant_id AND tk.id = a.task_id
	  LEFT JOIN LATERAL (
	    SELECT p.id, p.revoked_at, p.revocation_id FROM agents p
	     WHERE p.tenant_id = a.tenant_id AND p.id = ANY (a.ancestors) AND p.revoked_at IS NOT NULL
	     ORDER BY p.revoked_at, p.depth LIMIT 1) anc ON true`
)

// holdingSQL selects the agents holding authority in a form the partial
// index agents_unrevoked serves: an agent created before the longest task
// TTL cannot hold authority (its task's deadline has passed), which keeps
// the scan among recent rows.
const holdingSQL = holdsAuthoritySQL + ` AND a.revoked_at IS NULL AND a.created_at > @oldest_live`

// statusArgs are the arguments every agent status needs.
func statusArgs(v *tenantView, now time.Time) pgx.NamedArgs {
	return pgx.NamedArgs{"now": now, "quiet_before": now.Add(-v.liveness), "oldest_live": now.Add(-oauth.MaxTaskTTL)}
}

// agentsQuery is the statement of one page of Agents.
func agentsQuery(v *tenantView, now time.Time, f AgentFilter, after *keyset, limit int) query {
	args := statusArgs(v, now)
	var conds []string
	switch f.Status {
	case AgentLive, AgentSilent:
		conds = append(conds, holdingSQL)
		if f.Status == AgentSilent {
			conds = append(conds, "a.last_seen_at < @quiet_before")
		}
	case AgentRevoked:
		conds = append(conds, "("+agentRevokedSQL+" OR anc.id IS NOT NULL)")
	case AgentLineageRevoked:
		conds = append(conds, "a.revoked_at IS NULL", "tk.completed_at IS NULL", "anc.id IS NOT NULL")
	case AgentExpired:
		conds = append(conds, "a.revoked_at IS NULL", "tk.completed_at IS NULL", "anc.id IS NULL", "tk.deadline <= @now")
	}
	if f.TaskID != uuid.Nil {
		args["task"] = f.TaskID
		conds = append(conds, "a.task_id = @task")
	}
	if after != nil {
		args["after_at"], args["after_id"] = after.at, after.id
		conds = append(conds, "(a.created_at, a.id) < (@after_at, @after_id)")
	}
	args["limit"] = limit + 1
	return query{agentSelect + ` WHERE ` + where(conds) + ` ORDER BY a.created_at DESC, a.id DESC LIMIT @limit`, args}
}

// Agents lists the tenant's agents, newest first.
func (s *Service) Agents(ctx context.Context, tenantID uuid.UUID, f AgentFilter, p Page) (AgentPage, error) {
	if _, err := ParseAgentStatus(string(f.Status)); err != nil {
		return AgentPage{}, err
	}
	after, err := parseCursor("agents", p.Cursor)
	if err != nil {
		return AgentPage{}, err
	}
	now, limit := s.clock.Now(), p.limit()
	out := AgentPage{Agents: []Agent{}}
	err = s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		v, err := readTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		out.Agents, err = collectAgents(ctx, tx, v, now, agentsQuery(v, now, f, after, limit))
		return err
	})
	if err != nil {
		return AgentPage{}, err
	}
	if len(out.Agents) > limit {
		out.Agents = out.Agents[:limit]
		last := out.Agents[limit-1]
		out.Next = encodeCursor("agents", last.CreatedAt, last.ID)
	}
	return out, nil
}

// Agent returns one agent with its delegation chain (principal → root agent
// → … → this agent, with the scope at every hop), its tokens and its direct
// children. Returns a NotFound fault for an agent the tenant does not have.
func (s *Service) Agent(ctx context.Context, tenantID, agentID uuid.UUID) (AgentDetail, error) {
	now := s.clock.Now()
	var d AgentDetail
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		v, err := readTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		agent, ancestors, err := agentWithAncestors(ctx, tx, v, now, agentID)
		if err != nil {
			return err
		}
		d.Agent = *agent
		if d.Task, err = taskByID(ctx, tx, now, agent.TaskID); err != nil {
			return err
		}
		d.Chain = chainOf(d.Task.Scope, append(ancestors, *agent))
		if d.Tokens, d.TokensTruncated, err = agentTokens(ctx, tx, agent, now); err != nil {
			return err
		}
		args := statusArgs(v, now)
		args["task"], args["parent"], args["limit"] = agent.TaskID, agent.ID, MaxChildren+1
		d.Children, err = collectAgents(ctx, tx, v, now, query{agentSelect +
			` WHERE a.task_id = @task AND a.parent_id = @parent ORDER BY a.created_at, a.id LIMIT @limit`, args})
		if len(d.Children) > MaxChildren {
			d.Children, d.ChildrenTruncated = d.Children[:MaxChildren], true
		}
		return err
	})
	if err != nil {
		return AgentDetail{}, err
	}
	return d, nil
}

// agentWithAncestors reads an agent and its ancestors, root first.
func agentWithAncestors(ctx context.Context, tx pgx.Tx, v *tenantView, now time.Time, agentID uuid.UUID) (*Agent, []Agent, error) {
	args := statusArgs(v, now)
	args["agent"] = agentID
	list, err := collectAgents(ctx, tx, v, now, query{agentSelect + ` WHERE a.id = @agent`, args})
	if err != nil {
		return nil, nil, err
	}
	if len(list) == 0 {
		return nil, nil, notFound("agent")
	}
	agent := list[0]
	args = statusArgs(v, now)
	args["agent"] = agentID
	ancestors, err := collectAgents(ctx, tx, v, now, query{agentSelect +
		` WHERE a.id = ANY ((SELECT ancestors FROM agents WHERE id = @agent)::uuid[]) ORDER BY a.depth`, args})
	if err != nil {
		return nil, nil, err
	}
	return &agent, ancestors, nil
}

// chainOf builds the hops of a lineage, root first, under the task's scope.
func chainOf(taskScope []string, lineage []Agent) []Hop {
	hops := make([]Hop, len(lineage))
	above := taskScope
	for i, a := range lineage {
		hops[i] = Hop{Agent: a, Narrowed: narrowed(above, a.Scope)}
		above = a.Scope
	}
	return hops
}

// narrowed are the scopes of above that below lacks.
func narrowed(above, below []string) []string {
	out := oauth.NewScope(above...).Missing(oauth.NewScope(below...))
	if out == nil {
		out = []string{}
	}
	return out
}

// collectAgents runs q (built on agentSelect) and reads its agents.
func collectAgents(ctx context.Context, tx pgx.Tx, v *tenantView, now time.Time, q query) ([]Agent, error) {
	rows, err := tx.Query(ctx, q.sql, q.args)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Agent, error) {
		var a Agent
		var status string
		err := r.Scan(&a.ID, &a.TaskID, &a.ParentID, &a.Depth, &a.Scope, &a.CreatedAt, &a.LastSeenAt, &a.ClientID,
			&a.Principal, &status, &a.RevokedAt, &a.RevocationID, &a.RevokedAncestor, &a.LiveTokens)
		a.Status = AgentStatus(status)
		a.CreatedAt, a.LastSeenAt, a.RevokedAt = a.CreatedAt.UTC(), a.LastSeenAt.UTC(), utc(a.RevokedAt)
		a.HeartbeatAge = max(0, now.Sub(a.LastSeenAt))
		a.SPIFFEID = v.spiffeID(a.ClientID, a.TaskID, a.ID)
		if a.Scope == nil {
			a.Scope = []string{}
		}
		return a, err
	})
}
