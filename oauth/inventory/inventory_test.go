package inventory_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/oauth/inventory"
)

const api = "https://api.acme.example"

// fixture is a tenant with a task whose root agent delegated to a
// sub-agent, each holding a token, all made over real HTTP.
type fixture struct {
	env       *chittest.Env
	tn        *chittest.Tenant
	orch      string
	task      uuid.UUID
	root, sub *chittest.Agent
}

func newFixture(t *testing.T, env *chittest.Env, slug string) *fixture {
	t.Helper()
	tn := env.NewTenant(slug, []string{"tickets:*"}, []string{api})
	f := &fixture{env: env, tn: tn, orch: tn.ClientToken(tn.Orchestrator)}
	f.task = tn.CreateTask(f.orch, "tickets:read tickets:write tickets:delete", []string{api})
	f.root = tn.Register(tn.LaunchToken(f.orch, f.task, "tickets:read tickets:write"))
	f.root.Exchange("")
	f.sub = f.delegate(t, f.root, "tickets:read")
	return f
}

func (f *fixture) delegate(t *testing.T, parent *chittest.Agent, scope string) *chittest.Agent {
	t.Helper()
	resp := parent.Delegate(scope)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var lt struct {
		LaunchToken string `json:"launch_token"`
	}
	resp.JSON(t, &lt)
	child := f.tn.Register(lt.LaunchToken)
	child.Exchange("")
	return child
}

func (f *fixture) revoke(t *testing.T, level, target string) uuid.UUID {
	t.Helper()
	resp := f.tn.PostJSON("/v1/revocations", f.orch, map[string]string{"level": level, "target": target, "reason": "test"})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var out struct {
		ID uuid.UUID `json:"revocation_id"`
	}
	resp.JSON(t, &out)
	return out.ID
}

// deny makes the agent ask for more than it holds; returns the denial id.
func (f *fixture) deny(t *testing.T, a *chittest.Agent) uuid.UUID {
	t.Helper()
	resp := a.Delegate("admin:all")
	require.Equal(t, http.StatusForbidden, resp.Status, string(resp.Body))
	var out struct {
		DenialID uuid.UUID `json:"denial_id"`
	}
	resp.JSON(t, &out)
	require.NotEqual(t, uuid.Nil, out.DenialID)
	return out.DenialID
}

func jti(t *testing.T, token string) uuid.UUID {
	return uuid.MustParse(chittest.Claims(t, token)["jti"].(string))
}

func (f *fixture) complete(t *testing.T, task uuid.UUID) {
	t.Helper()
	resp := f.tn.PostJSON("/v1/tasks/"+task.String()+"/complete", f.orch, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
}

func TestTaskLineageShowsEachHopNarrowingAndWhatIsLive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	f := newFixture(t, env, "acme")
	inv := inventory.New(env.DB, clock.System)

	d, err := inv.Task(ctx, f.tn.T.ID, f.task)
	require.NoError(t, err)
	require.Equal(t, inventory.TaskActive, d.Status)
	require.Equal(t, "user:alice", d.Principal)
	require.Equal(t, "triage tickets", d.Purpose)
	require.Equal(t, f.tn.Orchestrator.ID, d.ClientID)
	require.Equal(t, []string{api}, d.Audiences)
	require.Equal(t, 2, d.Agents)
	require.Equal(t, 2, d.LiveAgents)

	l := d.Lineage
	require.Equal(t, "user:alice", l.Principal)
	require.Equal(t, []string{"tickets:delete", "tickets:read", "tickets:write"}, l.Scope)
	require.False(t, l.Truncated)
	require.Equal(t, 2, l.Agents)
	require.Len(t, l.Roots, 1)
	root := l.Roots[0]
	require.Equal(t, f.root.ID, root.ID)
	require.Equal(t, f.root.SPIFFEID, root.SPIFFEID)
	require.Nil(t, root.ParentID)
	require.Equal(t, 1, root.Depth)
	require.Equal(t, []string{"tickets:read", "tickets:write"}, root.Scope)
	require.Equal(t, []string{"tickets:delete"}, root.Narrowed, "the launch token left out what the task allowed")
	require.Equal(t, inventory.AgentLive, root.Status)
	require.Equal(t, 1, root.LiveTokens)
	require.Len(t, root.Tokens, 1)
	require.Equal(t, jti(t, f.root.Token), root.Tokens[0].JTI)
	require.Equal(t, inventory.TokenLive, root.Tokens[0].State)

	require.Len(t, root.Children, 1)
	sub := root.Children[0]
	require.Equal(t, f.sub.ID, sub.ID)
	require.Equal(t, f.sub.SPIFFEID, sub.SPIFFEID)
	require.Equal(t, &f.root.ID, sub.ParentID)
	require.Equal(t, 2, sub.Depth)
	require.Equal(t, []string{"tickets:read"}, sub.Scope)
	require.Equal(t, []string{"tickets:write"}, sub.Narrowed, "delegation dropped what the sub-agent was not given")
	require.Empty(t, sub.Children)
	require.Len(t, sub.Tokens, 1)
	require.Equal(t, jti(t, f.sub.Token), sub.Tokens[0].JTI)
	require.Equal(t, inventory.TokenLive, sub.Tokens[0].State)
	require.Equal(t, []string{"tickets:read"}, sub.Tokens[0].Scope)

	t.Run("the agent's chain runs from the principal's task to the agent", func(t *testing.T) {
		a, err := inv.Agent(ctx, f.tn.T.ID, f.sub.ID)
		require.NoError(t, err)
		require.Equal(t, "user:alice", a.Task.Principal)
		require.Len(t, a.Chain, 2)
		require.Equal(t, f.root.ID, a.Chain[0].ID)
		require.Equal(t, []string{"tickets:delete"}, a.Chain[0].Narrowed)
		require.Equal(t, f.sub.ID, a.Chain[1].ID)
		require.Equal(t, []string{"tickets:write"}, a.Chain[1].Narrowed)
		require.Len(t, a.Tokens, 1)
		require.Empty(t, a.Children)

		r, err := inv.Agent(ctx, f.tn.T.ID, f.root.ID)
		require.NoError(t, err)
		require.Len(t, r.Chain, 1)
		require.Len(t, r.Children, 1)
		require.Equal(t, f.sub.ID, r.Children[0].ID)
	})

	t.Run("a token shows the lineage it belongs to", func(t *testing.T) {
		tok, err := inv.Token(ctx, f.tn.T.ID, jti(t, f.sub.Token))
		require.NoError(t, err)
		require.Equal(t, inventory.TokenLive, tok.State)
		require.Equal(t, "user:alice", tok.Subject)
		require.Equal(t, f.sub.ID, tok.Agent.ID)
		require.Equal(t, f.task, tok.Task.ID)
		require.Len(t, tok.Chain, 2)
		require.Equal(t, f.root.ID, tok.Chain[0].ID)

		client, err := inv.Token(ctx, f.tn.T.ID, jti(t, f.orch))
		require.NoError(t, err)
		require.Equal(t, inventory.TokenLive, client.State)
		require.Nil(t, client.Agent)
		require.Nil(t, client.Chain)
		require.Equal(t, f.tn.Orchestrator.ID, client.ClientID)
	})
}

func TestRevokingAnAgentEndsItsDescendantsToo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	f := newFixture(t, env, "acme")
	grandchild := f.delegate(t, f.sub, "tickets:read")
	inv := inventory.New(env.DB, clock.System)

	revID := f.revoke(t, oauth.LevelAgent, f.sub.ID.String())

	d, err := inv.Task(ctx, f.tn.T.ID, f.task)
	require.NoError(t, err)
	require.Equal(t, 1, d.LiveAgents, "only the root agent holds authority")
	root := d.Lineage.Roots[0]
	require.Equal(t, inventory.AgentLive, root.Status)
	require.Equal(t, inventory.TokenLive, root.Tokens[0].State)

	sub := root.Children[0]
	require.Equal(t, inventory.AgentRevoked, sub.Status)
	require.Equal(t, &revID, sub.RevocationID)
	require.Zero(t, sub.LiveTokens)
	require.Equal(t, inventory.TokenRevoked, sub.Tokens[0].State)
	require.False(t, sub.Tokens[0].Inherited)

	gc := sub.Children[0]
	require.Equal(t, grandchild.ID, gc.ID)
	require.Equal(t, inventory.AgentLineageRevoked, gc.Status)
	require.Equal(t, &f.sub.ID, gc.RevokedAncestor)
	require.Equal(t, &revID, gc.RevocationID)
	require.Zero(t, gc.LiveTokens)
	require.Equal(t, inventory.TokenRevoked, gc.Tokens[0].State, "its token's row is untouched, but its lineage is broken")
	require.True(t, gc.Tokens[0].Inherited)
	require.Equal(t, &revID, gc.Tokens[0].RevocationID)

	// The read model says what a resource server is told.
	for _, a := range []*chittest.Agent{f.root, f.sub, grandchild} {
		tok, err := inv.Token(ctx, f.tn.T.ID, jti(t, a.Token))
		require.NoError(t, err)
		require.Equal(t, f.tn.Introspect(a.Token)["active"] == true, tok.State == inventory.TokenLive, "agent %s", a.ID)
	}

	o, err := inv.Overview(ctx, f.tn.T.ID)
	require.NoError(t, err)
	require.Equal(t, 1, o.LiveAgents)
	require.Equal(t, 2, o.ActiveTokens, "the root's and the orchestrator's own: the grandchild's chain is broken")

	rev, err := inv.Revocation(ctx, f.tn.T.ID, revID)
	require.NoError(t, err)
	require.Equal(t, oauth.LevelAgent, rev.Level)
	require.Equal(t, f.sub.ID.String(), rev.Target)
	require.Equal(t, &f.task, rev.TaskID)
	require.Equal(t, "client:"+f.tn.Orchestrator.ID, rev.RevokedBy)
	require.Equal(t, 2, rev.Count, "the agent and its token")
	require.False(t, rev.Renewal)

	t.Run("a chain revocation marks every descendant itself", func(t *testing.T) {
		chainID := f.revoke(t, oauth.LevelChain, f.root.ID.String())
		d, err := inv.Task(ctx, f.tn.T.ID, f.task)
		require.NoError(t, err)
		require.Zero(t, d.LiveAgents)
		root := d.Lineage.Roots[0]
		require.Equal(t, inventory.AgentRevoked, root.Status)
		require.Equal(t, &chainID, root.RevocationID)
		require.Equal(t, inventory.TokenRevoked, root.Tokens[0].State)
		require.Equal(t, &revID, root.Children[0].RevocationID, "the sub-agent keeps the revocation that ended it first")
		require.Equal(t, inventory.AgentRevoked, root.Children[0].Children[0].Status)
	})
}

func TestRenewalIsATokenStateNotAListedRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	f := newFixture(t, env, "acme")
	inv := inventory.New(env.DB, clock.System)
	old := jti(t, f.root.Token)
	renewed := jti(t, f.root.Renew("tickets:read"))

	tok, err := inv.Token(ctx, f.tn.T.ID, old)
	require.NoError(t, err)
	require.Equal(t, inventory.TokenRenewed, tok.State)
	require.Equal(t, &renewed, tok.RenewedTo)
	rev, err := inv.Revocation(ctx, f.tn.T.ID, *tok.RevocationID)
	require.NoError(t, err)
	require.True(t, rev.Renewal)

	next, err := inv.Token(ctx, f.tn.T.ID, renewed)
	require.NoError(t, err)
	require.Equal(t, inventory.TokenLive, next.State)
	require.Equal(t, &old, next.RenewedFrom)

	a, err := inv.Agent(ctx, f.tn.T.ID, f.root.ID)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{renewed, old}, []uuid.UUID{a.Tokens[0].JTI, a.Tokens[1].JTI}, "newest first")
	require.Equal(t, 1, a.LiveTokens)

	page, err := inv.Revocations(ctx, f.tn.T.ID, inventory.Page{})
	require.NoError(t, err)
	require.Empty(t, page.Revocations, "a renewal is routine, not a revocation to review")
	revID := f.revoke(t, oauth.LevelToken, renewed.String())
	page, err = inv.Revocations(ctx, f.tn.T.ID, inventory.Page{})
	require.NoError(t, err)
	require.Len(t, page.Revocations, 1)
	require.Equal(t, revID, page.Revocations[0].ID)
}

func TestStatusesFollowTheClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	f := newFixture(t, env, "acme")
	id := f.tn.T.ID

	// The tenant's liveness window is 90 s; the task's deadline 600 s.
	silent := inventory.New(env.DB, clock.NewManual(time.Now().Add(2*time.Minute)))
	a, err := silent.Agent(ctx, id, f.root.ID)
	require.NoError(t, err)
	require.Equal(t, inventory.AgentSilent, a.Status)
	require.True(t, a.Status.HoldsAuthority())
	require.InDelta(t, (2 * time.Minute).Seconds(), a.HeartbeatAge.Seconds(), 5)
	require.Equal(t, inventory.TokenLive, a.Tokens[0].State, "a silent agent's token works until the sweep revokes it")
	page, err := silent.Agents(ctx, id, inventory.AgentFilter{Status: inventory.AgentLive}, inventory.Page{})
	require.NoError(t, err)
	require.Len(t, page.Agents, 2, "silent agents still hold authority")
	page, err = silent.Agents(ctx, id, inventory.AgentFilter{Status: inventory.AgentSilent}, inventory.Page{})
	require.NoError(t, err)
	require.Len(t, page.Agents, 2)

	expired := inventory.New(env.DB, clock.NewManual(time.Now().Add(11*time.Minute)))
	d, err := expired.Task(ctx, id, f.task)
	require.NoError(t, err)
	require.Equal(t, inventory.TaskExpired, d.Status)
	require.Zero(t, d.LiveAgents)
	require.Equal(t, inventory.AgentExpired, d.Lineage.Roots[0].Status)
	require.False(t, d.Lineage.Roots[0].Status.HoldsAuthority())
	require.Equal(t, inventory.TokenExpired, d.Lineage.Roots[0].Tokens[0].State)
	page, err = expired.Agents(ctx, id, inventory.AgentFilter{Status: inventory.AgentLive}, inventory.Page{})
	require.NoError(t, err)
	require.Empty(t, page.Agents)
	page, err = expired.Agents(ctx, id, inventory.AgentFilter{Status: inventory.AgentExpired}, inventory.Page{})
	require.NoError(t, err)
	require.Len(t, page.Agents, 2)

	f.complete(t, f.task)
	d, err = expired.Task(ctx, id, f.task)
	require.NoError(t, err)
	require.Equal(t, inventory.TaskCompleted, d.Status, "completion outranks the deadline")
	require.Equal(t, inventory.AgentRevoked, d.Lineage.Roots[0].Status)
	require.Equal(t, inventory.TokenRevoked, d.Lineage.Roots[0].Tokens[0].State, "the completion ended it before it expired")

	for _, s := range []inventory.AgentStatus{inventory.AgentLive, inventory.AgentSilent, inventory.AgentRevoked,
		inventory.AgentLineageRevoked, inventory.AgentExpired} {
		require.NotEqual(t, string(s), s.Label(), "every status has words")
	}
}

func TestPagingGivesEveryItemOnceInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	f := newFixture(t, env, "acme")
	inv := inventory.New(env.DB, clock.System)
	id := f.tn.T.ID

	// Five of each (six agents): three pages of at most two.
	tasks := []uuid.UUID{f.task}
	agents := []uuid.UUID{f.root.ID, f.sub.ID}
	denials := []uuid.UUID{f.deny(t, f.sub)}
	var revocations []uuid.UUID
	for range 4 {
		task := f.tn.CreateTask(f.orch, "tickets:read", []string{api})
		tasks = append(tasks, task)
		agent := f.tn.Register(f.tn.LaunchToken(f.orch, task, ""))
		agent.Exchange("")
		agents = append(agents, agent.ID)
		denials = append(denials, f.deny(t, agent))
		revocations = append(revocations, f.revoke(t, oauth.LevelAgent, agent.ID.String()))
	}
	revocations = append(revocations, f.revoke(t, oauth.LevelToken, jti(t, f.root.Token).String()))
	newestFirst := func(ids []uuid.UUID) []uuid.UUID {
		out := make([]uuid.UUID, len(ids))
		for i, x := range ids {
			out[len(ids)-1-i] = x
		}
		return out
	}

	type pager func(cursor string) ([]uuid.UUID, string, error)
	for name, tc := range map[string]struct {
		want []uuid.UUID
		page pager
	}{
		"tasks": {newestFirst(tasks), func(c string) ([]uuid.UUID, string, error) {
			p, err := inv.Tasks(ctx, id, inventory.TaskFilter{}, inventory.Page{Cursor: c, Limit: 2})
			out := []uuid.UUID{}
			for _, x := range p.Tasks {
				out = append(out, x.ID)
			}
			return out, p.Next, err
		}},
		"agents": {newestFirst(agents), func(c string) ([]uuid.UUID, string, error) {
			p, err := inv.Agents(ctx, id, inventory.AgentFilter{}, inventory.Page{Cursor: c, Limit: 2})
			out := []uuid.UUID{}
			for _, x := range p.Agents {
				out = append(out, x.ID)
			}
			return out, p.Next, err
		}},
		"denials": {newestFirst(denials), func(c string) ([]uuid.UUID, string, error) {
			p, err := inv.Denials(ctx, id, inventory.DenialFilter{}, inventory.Page{Cursor: c, Limit: 2})
			out := []uuid.UUID{}
			for _, x := range p.Denials {
				out = append(out, x.ID)
			}
			return out, p.Next, err
		}},
		"revocations": {newestFirst(revocations), func(c string) ([]uuid.UUID, string, error) {
			p, err := inv.Revocations(ctx, id, inventory.Page{Cursor: c, Limit: 2})
			out := []uuid.UUID{}
			for _, x := range p.Revocations {
				out = append(out, x.ID)
			}
			return out, p.Next, err
		}},
	} {
		t.Run(name, func(t *testing.T) {
			var got []uuid.UUID
			cursor, pages := "", 0
			for {
				ids, next, err := tc.page(cursor)
				require.NoError(t, err)
				got = append(got, ids...)
				pages++
				if next == "" {
					break
				}
				require.Len(t, ids, 2, "only the last page is short")
				cursor = next
			}
			require.Equal(t, 3, pages)
			require.Equal(t, tc.want, got)
		})
	}

	t.Run("a cursor belongs to its listing", func(t *testing.T) {
		p, err := inv.Tasks(ctx, id, inventory.TaskFilter{}, inventory.Page{Limit: 1})
		require.NoError(t, err)
		_, err = inv.Agents(ctx, id, inventory.AgentFilter{}, inventory.Page{Cursor: p.Next})
		require.Equal(t, fault.Invalid, fault.KindOf(err))
		_, err = inv.Tasks(ctx, id, inventory.TaskFilter{}, inventory.Page{Cursor: "not a cursor"})
		require.Equal(t, fault.Invalid, fault.KindOf(err))
	})
	t.Run("limits are bounded", func(t *testing.T) {
		p, err := inv.Tasks(ctx, id, inventory.TaskFilter{}, inventory.Page{Limit: 10_000})
		require.NoError(t, err)
		require.Len(t, p.Tasks, 5)
		require.Empty(t, p.Next)
	})
}

func TestFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	f := newFixture(t, env, "acme")
	inv := inventory.New(env.DB, clock.System)
	id := f.tn.T.ID

	resp := f.tn.PostJSON("/v1/tasks", f.orch, map[string]any{"principal": "user:bob", "purpose": "<script>alert(1)</script>",
		"scope": "tickets:read", "audiences": []string{api}, "ttl_seconds": 600})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var created struct {
		TaskID uuid.UUID `json:"task_id"`
	}
	resp.JSON(t, &created)
	bobs := created.TaskID
	bobAgent := f.tn.Register(f.tn.LaunchToken(f.orch, bobs, ""))
	bobAgent.Exchange("")
	f.complete(t, bobs)
	denied := f.deny(t, f.sub)

	tasks := func(filter inventory.TaskFilter) []uuid.UUID {
		p, err := inv.Tasks(ctx, id, filter, inventory.Page{})
		require.NoError(t, err)
		out := []uuid.UUID{}
		for _, x := range p.Tasks {
			out = append(out, x.ID)
		}
		return out
	}
	require.Equal(t, []uuid.UUID{bobs}, tasks(inventory.TaskFilter{Principal: "user:bob"}))
	require.Equal(t, []uuid.UUID{bobs}, tasks(inventory.TaskFilter{Status: inventory.TaskCompleted}))
	require.Equal(t, []uuid.UUID{f.task}, tasks(inventory.TaskFilter{Status: inventory.TaskActive}))
	require.Equal(t, []uuid.UUID{}, tasks(inventory.TaskFilter{Status: inventory.TaskExpired}))
	require.Equal(t, []uuid.UUID{}, tasks(inventory.TaskFilter{Status: inventory.TaskActive, Principal: "user:bob"}))
	p, err := inv.Tasks(ctx, id, inventory.TaskFilter{Principal: "user:bob"}, inventory.Page{})
	require.NoError(t, err)
	require.Equal(t, "<script>alert(1)</script>", p.Tasks[0].Purpose, "returned as stored: the console escapes")

	agents := func(filter inventory.AgentFilter) []uuid.UUID {
		p, err := inv.Agents(ctx, id, filter, inventory.Page{})
		require.NoError(t, err)
		out := []uuid.UUID{}
		for _, x := range p.Agents {
			out = append(out, x.ID)
		}
		return out
	}
	require.Equal(t, []uuid.UUID{bobAgent.ID, f.sub.ID, f.root.ID}, agents(inventory.AgentFilter{}))
	require.Equal(t, []uuid.UUID{f.sub.ID, f.root.ID}, agents(inventory.AgentFilter{Status: inventory.AgentLive}))
	require.Equal(t, []uuid.UUID{bobAgent.ID}, agents(inventory.AgentFilter{Status: inventory.AgentRevoked}))
	require.Equal(t, []uuid.UUID{f.sub.ID, f.root.ID}, agents(inventory.AgentFilter{TaskID: f.task}))
	require.Equal(t, []uuid.UUID{}, agents(inventory.AgentFilter{TaskID: bobs, Status: inventory.AgentLive}))
	_, err = inv.Agents(ctx, id, inventory.AgentFilter{Status: "dormant"}, inventory.Page{})
	require.Equal(t, fault.Invalid, fault.KindOf(err))

	denials := func(filter inventory.DenialFilter) []uuid.UUID {
		p, err := inv.Denials(ctx, id, filter, inventory.Page{})
		require.NoError(t, err)
		out := []uuid.UUID{}
		for _, x := range p.Denials {
			out = append(out, x.ID)
		}
		return out
	}
	require.Equal(t, []uuid.UUID{denied}, denials(inventory.DenialFilter{}))
	require.Equal(t, []uuid.UUID{denied}, denials(inventory.DenialFilter{Check: oauth.CheckScope}))
	require.Equal(t, []uuid.UUID{}, denials(inventory.DenialFilter{Check: oauth.CheckReplay}))
	require.Equal(t, []uuid.UUID{denied}, denials(inventory.DenialFilter{TaskID: f.task}))
	require.Equal(t, []uuid.UUID{}, denials(inventory.DenialFilter{TaskID: bobs}))
	require.Equal(t, []uuid.UUID{denied}, denials(inventory.DenialFilter{AgentID: f.sub.ID}))
	require.Equal(t, []uuid.UUID{}, denials(inventory.DenialFilter{AgentID: f.root.ID}))
	require.Equal(t, []uuid.UUID{denied}, denials(inventory.DenialFilter{ClientID: f.tn.Orchestrator.ID}))
	require.Equal(t, []uuid.UUID{}, denials(inventory.DenialFilter{ClientID: "someone-else"}))
	_, err = inv.Denials(ctx, id, inventory.DenialFilter{Check: "vibes"}, inventory.Page{})
	require.Equal(t, fault.Invalid, fault.KindOf(err))

	d, err := inv.Denial(ctx, id, denied)
	require.NoError(t, err)
	require.Equal(t, oauth.CheckScope, d.Check)
	require.Equal(t, "admin:all", d.Presented)
	require.Equal(t, &f.sub.ID, d.AgentID)
}

func TestAnotherTenantsObjectsAreNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	a := newFixture(t, env, "acme")
	b := newFixture(t, env, "beta")
	inv := inventory.New(env.DB, clock.System)
	denial := b.deny(t, b.root)
	revocation := b.revoke(t, oauth.LevelAgent, b.sub.ID.String())

	own := a.tn.T.ID
	for name, read := range map[string]func() error{
		"task":       func() error { _, err := inv.Task(ctx, own, b.task); return err },
		"agent":      func() error { _, err := inv.Agent(ctx, own, b.root.ID); return err },
		"token":      func() error { _, err := inv.Token(ctx, own, jti(t, b.root.Token)); return err },
		"denial":     func() error { _, err := inv.Denial(ctx, own, denial); return err },
		"revocation": func() error { _, err := inv.Revocation(ctx, own, revocation); return err },
	} {
		err := read()
		require.Equal(t, fault.NotFound, fault.KindOf(err), "%s of tenant beta read as acme: %v", name, err)
	}

	agents, err := inv.Agents(ctx, own, inventory.AgentFilter{}, inventory.Page{})
	require.NoError(t, err)
	require.Len(t, agents.Agents, 2)
	agents, err = inv.Agents(ctx, own, inventory.AgentFilter{TaskID: b.task}, inventory.Page{})
	require.NoError(t, err)
	require.Empty(t, agents.Agents)
	denials, err := inv.Denials(ctx, own, inventory.DenialFilter{}, inventory.Page{})
	require.NoError(t, err)
	require.Empty(t, denials.Denials)
	revocations, err := inv.Revocations(ctx, own, inventory.Page{})
	require.NoError(t, err)
	require.Empty(t, revocations.Revocations)
	o, err := inv.Overview(ctx, own)
	require.NoError(t, err)
	require.Equal(t, 2, o.LiveAgents)
	require.Zero(t, o.DenialsLastHour)
}

func TestOverviewCountsAndCompletedTaskCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := clock.NewManual(time.Now())
	db, _ := pgtest.Open(t)
	env := chittest.StartWith(t, db, chittest.Options{Clock: clk})
	f := newFixture(t, env, "acme") // task 1: root and sub-agent, tokens issued now for 300 s
	f.deny(t, f.root)
	// A renewal ends the root's first token before completion: completion
	// cut nothing off that one.
	f.root.Renew("")
	other := f.tn.CreateTask(f.orch, "tickets:read", []string{api}) // task 2 stays active
	busy := f.tn.Register(f.tn.LaunchToken(f.orch, other, ""))
	busy.Exchange("")
	quiet := f.tn.Register(f.tn.LaunchToken(f.orch, other, ""))
	quiet.Exchange("")

	clk.Advance(2 * time.Minute)
	f.complete(t, f.task) // task 1 ran 120 s
	resp := f.tn.PostJSON("/v1/agents/"+busy.ID.String()+"/heartbeat", busy.Token, nil)
	require.Equal(t, http.StatusNoContent, resp.Status, string(resp.Body))

	o, err := inventory.New(env.DB, clk).Overview(ctx, f.tn.T.ID)
	require.NoError(t, err)
	require.Equal(t, clk.Now(), o.Now)
	require.Equal(t, 2, o.LiveAgents)
	require.Equal(t, 1, o.SilentAgents, "no heartbeat for more than the 90 s window")
	require.Equal(t, 3, o.ActiveTokens, "task 2's two agents' and the orchestrator's own")
	require.Equal(t, 1, o.ActiveTasks)
	require.Equal(t, 1, o.CompletedTasks)
	require.Equal(t, 1, o.DenialsLastHour)
	require.Equal(t, []inventory.CheckCount{{Check: oauth.CheckScope, Count: 1}}, o.TopDenialChecks)
	require.Equal(t, 1, o.RevocationsLastHour, "the completion; the renewal is routine")

	// Task 1's credentials spanned 300 s (first issue to last expiry) for a
	// task that ran 120 s; completion cut 180 s off each of the two tokens
	// still unrevoked (the sub-agent's and the root's renewed one).
	c := o.Completions
	require.Equal(t, 1, c.Tasks)
	require.InDelta(t, 2.5, c.MedianLifetimeRatio, 0.001)
	require.Equal(t, 2, c.Tokens)
	require.Equal(t, 360*time.Second, c.TimeLeftTotal)
	require.Equal(t, 180*time.Second, c.TimeLeftMedian)

	later, err := inventory.New(env.DB, clock.NewManual(clk.Now().Add(25*time.Hour))).Overview(ctx, f.tn.T.ID)
	require.NoError(t, err)
	require.Zero(t, later.CompletedTasks, "a day later the completion is out of the window")
	require.Zero(t, later.Completions.Tasks)
	require.Zero(t, later.DenialsLastHour)
	require.Zero(t, later.LiveAgents, "task 2's deadline has passed")
	require.Zero(t, later.ActiveTokens)
}
