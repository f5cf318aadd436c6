package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/tenants"
)

// Task limits.
const (
	MinTaskTTL       = 10 * time.Second
	MaxTaskTTL       = 7 * 24 * time.Hour
	LaunchTokenTTL   = 120 * time.Second
	launchTokenBytes = 32
	maxAudiences     = 16
)

// Task is one unit of work an orchestrator runs on behalf of a principal.
type Task struct {
	ID          uuid.UUID `json:"task_id"`
	Deadline    time.Time `json:"deadline"`
	Scope       Scope     `json:"-"`
	Audiences   []string  `json:"audiences"`
	ScopeString string    `json:"scope"`
}

// TaskParams is the body of POST /v1/tasks.
type TaskParams struct {
	Principal  string   `json:"principal"`
	Purpose    string   `json:"purpose"`
	Scope      string   `json:"scope"`
	Audiences  []string `json:"audiences"`
	TTLSeconds int      `json:"ttl_seconds"`
}

// ParseAudiences validates audience URIs (absolute, at most 512 bytes).
func ParseAudiences(list []string) ([]string, error) {
	if len(list) > maxAudiences {
		return nil, fault.InvalidField("audiences", "at most %d", maxAudiences)
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		u, err := url.Parse(a)
		if err != nil || !u.IsAbs() || u.Host == "" || len(a) > 512 || strings.ContainsAny(a, " \"\\") {
			return nil, fault.InvalidField("audiences", "each must be an absolute URI")
		}
		if !contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// CreateTask creates a task for an orchestrator, within what governance
// grants it. Refusals come back as a *Denial (403 policy).
func (s *Service) CreateTask(ctx context.Context, t *tenants.Tenant, caller *Caller, p TaskParams) (*Task, error) {
	if caller.IsAgent() || caller.Kind != KindOrchestrator {
		return nil, apiDenial(http.StatusForbidden, CheckPolicy, "only orchestrators create tasks")
	}
	if len(p.Principal) == 0 || len(p.Principal) > 256 {
		return nil, fault.InvalidField("principal", "must be 1 to 256 characters")
	}
	if len(p.Purpose) > 1024 {
		return nil, fault.InvalidField("purpose", "must be at most 1024 characters")
	}
	scope, err := ParseScope(p.Scope)
	if err != nil {
		return nil, err
	}
	if scope.IsEmpty() {
		return nil, fault.InvalidField("scope", "must name at least one scope")
	}
	auds, err := ParseAudiences(p.Audiences)
	if err != nil {
		return nil, err
	}
	if len(auds) == 0 {
		return nil, fault.InvalidField("audiences", "must name at least one audience")
	}
	ttl := time.Duration(p.TTLSeconds) * time.Second
	if ttl < MinTaskTTL || ttl > MaxTaskTTL {
		return nil, fault.InvalidField("ttl_seconds", "must be between %d and %d", int(MinTaskTTL/time.Second), int(MaxTaskTTL/time.Second))
	}
	g, d := s.govern(t, caller.ClientID, scope, auds, true)
	if d != nil {
		if s.policy != nil {
			d.Reason = "the task asks for more than policy grants this orchestrator"
		}
		return nil, d
	}
	if g.MaxTaskTTL > 0 && ttl > g.MaxTaskTTL {
		d := apiDenial(http.StatusForbidden, CheckPolicy, "ttl_seconds exceeds the orchestrator's maximum task TTL").
			with("ttl_seconds ≤ "+strconv.Itoa(int(g.MaxTaskTTL/time.Second)), "ttl_seconds "+strconv.Itoa(p.TTLSeconds))
		d.Rule, d.ClientID = g.MaxTaskTTLRule, caller.ClientID
		return nil, d
	}
	now := s.clock.Now()
	task := &Task{ID: uuid.Must(uuid.NewV7()), Deadline: now.Add(ttl).Truncate(time.Second), Scope: scope,
		Audiences: auds, ScopeString: scope.String()}
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tasks (tenant_id, id, client_id, principal, purpose, scope, audiences, deadline, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, t.ID, task.ID, caller.ClientID, p.Principal, p.Purpose,
			scope.Tokens(), auds, task.Deadline, now); err != nil {
			return err
		}
		return audit.Append(ctx, tx, t.ID, audit.Event{Time: now, Type: audit.TaskCreated, Actor: "client:" + caller.ClientID,
			Principal: p.Principal, ClientID: caller.ClientID, TaskID: task.ID,
			Detail: map[string]any{"scope": scope.String(), "audiences": auds, "deadline": task.Deadline,
				"purpose_sha256": audit.Hash("purpose", p.Purpose)}})
	})
	if err != nil {
		return nil, err
	}
	return task, nil
}

// taskRow is a task as the credential paths need it.
type taskRow struct {
	ID          uuid.UUID
	ClientID    string
	Principal   string
	Scope       Scope
	Audiences   []string
	Deadline    time.Time
	CreatedAt   time.Time
	CompletedAt *time.Time
}

// taskOfAgentTx reads the task and the depth of one of its agents in one
// round trip.
func taskOfAgentTx(ctx context.Context, tx pgx.Tx, taskID, agentID uuid.UUID) (*taskRow, int, error) {
	var r taskRow
	var scope []string
	var depth int
	err := tx.QueryRow(ctx, `SELECT tk.id, tk.client_id, tk.principal, tk.scope, tk.audiences, tk.deadline, tk.created_at,
		tk.completed_at, a.depth
		FROM tasks tk JOIN agents a ON a.tenant_id = tk.tenant_id AND a.task_id = tk.id
		WHERE tk.id = $1 AND a.id = $2`, taskID, agentID).
		Scan(&r.ID, &r.ClientID, &r.Principal, &scope, &r.Audiences, &r.Deadline, &r.CreatedAt, &r.CompletedAt, &depth)
	if err == pgx.ErrNoRows {
		return nil, 0, errNotFound("task")
	}
	if err != nil {
		return nil, 0, err
	}
	r.Scope = NewScope(scope...)
	return &r, depth, nil
}

func taskTx(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*taskRow, error) {
	var r taskRow
	var scope []string
	err := tx.QueryRow(ctx, `SELECT id, client_id, principal, scope, audiences, deadline, created_at, completed_at
		FROM tasks WHERE id = $1`, id).Scan(&r.ID, &r.ClientID, &r.Principal, &scope, &r.Audiences, &r.Deadline, &r.CreatedAt, &r.CompletedAt)
	if err != nil {
		if err == pgx.ErrNoRows {
			return nil, errNotFound("task")
		}
		return nil, err
	}
	r.Scope = NewScope(scope...)
	return &r, nil
}

// LaunchToken is a one-time credential that lets a new agent register.
type LaunchToken struct {
	Token     string `json:"launch_token"`
	ExpiresIn int    `json:"expires_in"`
}

func newLaunchSecret() (string, []byte) {
	raw := make([]byte, launchTokenBytes)
	_, _ = rand.Read(raw)
	tok := "chl_" + base64.RawURLEncoding.EncodeToString(raw)
	return tok, hashLaunch(tok)
}

func hashLaunch(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// MintLaunchToken gives an orchestrator a launch token for a root agent of
// its task, with a scope ⊆ the task's.
func (s *Service) MintLaunchToken(ctx context.Context, t *tenants.Tenant, caller *Caller, taskID uuid.UUID, scopeParam string) (*LaunchToken, error) {
	if caller.IsAgent() || caller.Kind != KindOrchestrator {
		return nil, apiDenial(http.StatusForbidden, CheckPolicy, "only the task's orchestrator mints launch tokens for it")
	}
	requested, err := ParseScope(scopeParam)
	if err != nil {
		return nil, err
	}
	var lt *LaunchToken
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		task, err := taskTx(ctx, tx, taskID)
		if err != nil {
			return err
		}
		if task.ClientID != caller.ClientID {
			return errNotFound("task") // another orchestrator's task does not exist for this caller
		}
		now := s.clock.Now()
		if d := taskUsable(task, now); d != nil {
			return d
		}
		scope, err := task.Scope.Attenuate(requested)
		if err != nil {
			d := apiDenial(http.StatusForbidden, CheckScope, "launch token scope exceeds the task's").with(task.Scope.String(), requested.String())
			d.TaskID, d.ClientID = task.ID, caller.ClientID
			return d
		}
		if _, d := s.govern(t, task.ClientID, scope, task.Audiences, true); d != nil {
			d.TaskID = task.ID
			return d
		}
		lt, err = s.insertLaunchToken(ctx, tx, t, task, uuid.Nil, 1, scope, time.Time{}, now, "client:"+caller.ClientID)
		return err
	})
	return lt, err
}

// MintSubAgentLaunchToken lets an agent delegate: a launch token for a
// sub-agent with a scope ⊆ the parent's presented token, one level deeper.
func (s *Service) MintSubAgentLaunchToken(ctx context.Context, t *tenants.Tenant, caller *Caller, agentID uuid.UUID, scopeParam string) (*LaunchToken, error) {
	if !caller.IsAgent() || caller.AgentID != agentID {
		return nil, apiDenial(http.StatusForbidden, CheckPolicy, "only the agent itself delegates with its token")
	}
	requested, err := ParseScope(scopeParam)
	if err != nil {
		return nil, err
	}
	var lt *LaunchToken
	err = s.db.InTenantTx(ctx, t.ID, func(tx pgx.Tx) error {
		task, depth, err := taskOfAgentTx(ctx, tx, caller.TaskID, agentID)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if d := taskUsable(task, now); d != nil {
			return d
		}
		var caps TaskGrant
		if s.policy != nil {
			caps = s.policy.CheckTask(t.ID, task.ClientID, nil, nil)
		}
		if maxDepth, capRule := effectiveDepth(t.Settings.MaxDepth, caps); depth+1 > maxDepth {
			d := depthDenial(apiDenial(http.StatusForbidden, CheckDepth, ""), maxDepth, capRule, depth+1, "delegation would exceed")
			d.AgentID, d.TaskID, d.ClientID = agentID, task.ID, task.ClientID
			return d
		}
		scope, err := caller.Scope.Attenuate(requested)
		if err != nil || requested.IsEmpty() {
			reason := "sub-agent scope exceeds the parent's token"
			if requested.IsEmpty() {
				reason = "a sub-agent launch token must name its scope"
			}
			d := apiDenial(http.StatusForbidden, CheckScope, reason).with(caller.Scope.String(), requested.String())
			if requested.IsEmpty() {
				d.Status = http.StatusBadRequest
			}
			d.AgentID, d.TaskID, d.ClientID = agentID, task.ID, task.ClientID
			return d
		}
		if _, d := s.govern(t, task.ClientID, scope, task.Audiences, true); d != nil {
			d.AgentID, d.TaskID = agentID, task.ID
			return d
		}
		notAfter := time.Unix(caller.Claims.Expiry, 0)
		lt, err = s.insertLaunchToken(ctx, tx, t, task, agentID, depth+1, scope, notAfter, now, "agent:"+agentID.String())
		return err
	})
	return lt, err
}

func (s *Service) insertLaunchToken(ctx context.Context, tx pgx.Tx, t *tenants.Tenant, task *taskRow, parent uuid.UUID,
	depth int, scope Scope, notAfter, now time.Time, actor string) (*LaunchToken, error) {
	exp := earliest(now.Add(LaunchTokenTTL), task.Deadline, notAfter)
	tok, hash := newLaunchSecret()
	var na *time.Time
	if !notAfter.IsZero() {
		na = &notAfter
	}
	// The launch token and its audit event in one pipelined round trip.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO launch_tokens (tenant_id, token_hash, task_id, parent_agent_id, depth, scope,
		not_after, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, hash, task.ID, nullID(parent), depth, scope.Tokens(), na, now, exp)
	if err := audit.Queue(b, t.ID, audit.Event{Time: now, Type: audit.LaunchIssued, Actor: actor,
		Principal: task.Principal, ClientID: task.ClientID, TaskID: task.ID, AgentID: parent,
		Detail: map[string]any{"scope": scope.String(), "depth": depth, "launch_token_sha256": base64.RawURLEncoding.EncodeToString(hash)}}); err != nil {
		return nil, err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return &LaunchToken{Token: tok, ExpiresIn: int(exp.Sub(now).Round(time.Second) / time.Second)}, nil
}

// taskUsable refuses work on a completed or expired task.
func taskUsable(task *taskRow, now time.Time) *Denial {
	if task.CompletedAt != nil {
		d := apiDenial(http.StatusForbidden, CheckRevoked, "the task is completed")
		d.TaskID = task.ID
		return d
	}
	if !now.Before(task.Deadline) {
		d := apiDenial(http.StatusForbidden, CheckDeadline, "the task's deadline has passed").with("before "+task.Deadline.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		d.TaskID = task.ID
		return d
	}
	return nil
}
