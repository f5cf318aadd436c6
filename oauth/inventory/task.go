package inventory

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/oauth"
)

// Task is one task as the console lists it.
type Task struct {
	ID          uuid.UUID
	ClientID    string // the orchestrator that created it
	Principal   string
	Purpose     string
	Scope       []string // the ceiling of everything issued under it, sorted
	Audiences   []string
	Deadline    time.Time
	CreatedAt   time.Time
	CompletedAt *time.Time
	Status      TaskStatus
	Agents      int // agents ever registered under it
	LiveAgents  int // those holding authority now
}

// TaskFilter narrows Tasks; zero fields do not filter.
type TaskFilter struct {
	Status    TaskStatus
	Principal string // exact match
}

// TaskPage is one page of tasks, newest first.
type TaskPage struct {
	Tasks []Task
	Next  string
}

// TaskDetail is a task with its delegation tree.
type TaskDetail struct {
	Task
	Lineage Lineage
}

// MaxLineageAgents and MaxLineageTokens bound a task's tree.
const (
	MaxLineageAgents = 500
	MaxLineageTokens = 2000
)

// Lineage is a task's delegation tree: its principal, under it the root
// agents the orchestrator launched, under each the sub-agents it launched.
type Lineage struct {
	Principal string
	Scope     []string // the task's scope: what the principal's task may carry
	Roots     []*Node
	Agents    int // agents in the tree
	// Truncated: the task has more than MaxLineageAgents agents; the tree
	// holds the shallowest ones (so every agent shown has its whole chain).
	Truncated bool
	// TokensTruncated: the tree's agents hold more than MaxLineageTokens
	// kept tokens; unexpired, unrevoked ones are kept first, then the newest.
	TokensTruncated bool
}

// Node is one agent of a lineage.
type Node struct {
	Hop
	Tokens   []Token // newest first
	Children []*Node // oldest first
}

const (
	taskStatusSQL = `CASE WHEN tk.completed_at IS NOT NULL THEN 'completed'
	                      WHEN tk.deadline <= @now THEN 'expired' ELSE 'active' END`
	taskActiveSQL = `(tk.completed_at IS NULL AND tk.deadline > @now)`

	taskSelect = `
	SELECT tk.id, tk.client_id, tk.principal, tk.purpose, tk.scope, tk.audiences, tk.deadline, tk.created_at,
	       tk.completed_at, ` + taskStatusSQL + `,
	       (SELECT count(*) FROM agents a WHERE a.tenant_id = tk.tenant_id AND a.task_id = tk.id),
	       CASE WHEN ` + taskActiveSQL + ` THEN
	         (SELECT count(*) FROM agents a WHERE a.tenant_id = tk.tenant_id AND a.task_id = tk.id AND a.revoked_at IS NULL
	             AND NOT EXISTS (SELECT 1 FROM agents p WHERE p.tenant_id = a.tenant_id AND p.id = ANY (a.ancestors)
	                                AND p.revoked_at IS NOT NULL))
	       ELSE 0 END
	  FROM tasks tk`
)

// tasksQuery is the statement of one page of Tasks.
func tasksQuery(now time.Time, f TaskFilter, after *keyset, limit int) query {
	args := pgx.NamedArgs{"now": now}
	var conds []string
	switch f.Status {
	case TaskActive:
		// A task created longer ago than the longest task TTL is past its
		// deadline: the bound keeps the scan among recent rows.
		args["oldest_live"] = now.Add(-oauth.MaxTaskTTL)
		conds = append(conds, "tk.completed_at IS NULL", "tk.deadline > @now", "tk.created_at > @oldest_live")
	case TaskCompleted:
		conds = append(conds, "tk.completed_at IS NOT NULL")
	case TaskExpired:
		conds = append(conds, "tk.completed_at IS NULL", "tk.deadline <= @now")
	}
	if f.Principal != "" {
		args["principal"] = f.Principal
		conds = append(conds, "tk.principal = @principal")
	}
	if after != nil {
		args["after_at"], args["after_id"] = after.at, after.id
		conds = append(conds, "(tk.created_at, tk.id) < (@after_at, @after_id)")
	}
	args["limit"] = limit + 1
	return query{taskSelect + ` WHERE ` + where(conds) + ` ORDER BY tk.created_at DESC, tk.id DESC LIMIT @limit`, args}
}

// Tasks lists the tenant's tasks, newest first.
func (s *Service) Tasks(ctx context.Context, tenantID uuid.UUID, f TaskFilter, p Page) (TaskPage, error) {
	if _, err := ParseTaskStatus(string(f.Status)); err != nil {
		return TaskPage{}, err
	}
	after, err := parseCursor("tasks", p.Cursor)
	if err != nil {
		return TaskPage{}, err
	}
	now, limit := s.clock.Now(), p.limit()
	out := TaskPage{Tasks: []Task{}}
	err = s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		out.Tasks, err = collectTasks(ctx, tx, tasksQuery(now, f, after, limit))
		return err
	})
	if err != nil {
		return TaskPage{}, err
	}
	if len(out.Tasks) > limit {
		out.Tasks = out.Tasks[:limit]
		last := out.Tasks[limit-1]
		out.Next = encodeCursor("tasks", last.CreatedAt, last.ID)
	}
	return out, nil
}

// Task returns a task with its delegation tree: principal → root agents →
// sub-agents, each with its scope, status and tokens (live ones flagged by
// their state). Returns a NotFound fault for a task the tenant does not have.
func (s *Service) Task(ctx context.Context, tenantID, taskID uuid.UUID) (TaskDetail, error) {
	now := s.clock.Now()
	var d TaskDetail
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		if d.Task, err = taskByID(ctx, tx, now, taskID); err != nil {
			return err
		}
		v, err := readTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		d.Lineage, err = lineageOf(ctx, tx, v, now, d.Task)
		return err
	})
	if err != nil {
		return TaskDetail{}, err
	}
	return d, nil
}

func taskByID(ctx context.Context, tx pgx.Tx, now time.Time, id uuid.UUID) (Task, error) {
	list, err := collectTasks(ctx, tx, query{taskSelect + ` WHERE tk.id = @task`, pgx.NamedArgs{"now": now, "task": id}})
	if err != nil {
		return Task{}, err
	}
	if len(list) == 0 {
		return Task{}, notFound("task")
	}
	return list[0], nil
}

func collectTasks(ctx context.Context, tx pgx.Tx, q query) ([]Task, error) {
	rows, err := tx.Query(ctx, q.sql, q.args)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Task, error) {
		var t Task
		var status string
		err := r.Scan(&t.ID, &t.ClientID, &t.Principal, &t.Purpose, &t.Scope, &t.Audiences, &t.Deadline, &t.CreatedAt,
			&t.CompletedAt, &status, &t.Agents, &t.LiveAgents)
		t.Status = TaskStatus(status)
		t.Deadline, t.CreatedAt, t.CompletedAt = t.Deadline.UTC(), t.CreatedAt.UTC(), utc(t.CompletedAt)
		return t, err
	})
}

// lineageOf reads a task's agents, shallowest first (so a bounded read
// still holds every shown agent's ancestors), and their tokens, and builds
// the tree.
func lineageOf(ctx context.Context, tx pgx.Tx, v *tenantView, now time.Time, task Task) (Lineage, error) {
	l := Lineage{Principal: task.Principal, Scope: task.Scope, Roots: []*Node{}}
	args := statusArgs(v, now)
	args["task"], args["limit"] = task.ID, MaxLineageAgents+1
	agents, err := collectAgents(ctx, tx, v, now, query{agentSelect +
		` WHERE a.task_id = @task ORDER BY a.depth, a.created_at, a.id LIMIT @limit`, args})
	if err != nil {
		return l, err
	}
	if len(agents) > MaxLineageAgents {
		agents, l.Truncated = agents[:MaxLineageAgents], true
	}
	l.Agents = len(agents)
	ids := make([]uuid.UUID, len(agents))
	for i, a := range agents {
		ids[i] = a.ID
	}
	tokens, err := collectTokens(ctx, tx, tokenSelect+`
		WHERE t.task_id = @task AND t.agent_id = ANY (@agents)
		ORDER BY (t.revoked_at IS NULL AND t.expires_at > @now) DESC, t.issued_at DESC, t.jti DESC LIMIT @limit`,
		pgx.NamedArgs{"task": task.ID, "agents": ids, "now": now, "limit": MaxLineageTokens + 1})
	if err != nil {
		return l, err
	}
	if len(tokens) > MaxLineageTokens {
		tokens, l.TokensTruncated = tokens[:MaxLineageTokens], true
	}

	nodes := make(map[uuid.UUID]*Node, len(agents))
	for _, a := range agents {
		n := &Node{Hop: Hop{Agent: a}, Tokens: []Token{}, Children: []*Node{}}
		nodes[a.ID] = n
		above := task.Scope
		parent := (*Node)(nil)
		if a.ParentID != nil {
			parent = nodes[*a.ParentID] // read before it: shallower
		}
		if parent != nil {
			above = parent.Scope
			parent.Children = append(parent.Children, n)
		} else {
			l.Roots = append(l.Roots, n)
		}
		n.Narrowed = narrowed(above, a.Scope)
	}
	// Tokens came live first, then newest first: show each agent's newest first.
	for _, t := range tokens {
		if n := nodes[*t.AgentID]; n != nil {
			n.Tokens = append(n.Tokens, t.settle(&n.Agent, now))
		}
	}
	for _, n := range nodes {
		sortTokens(n.Tokens)
	}
	return l, nil
}
