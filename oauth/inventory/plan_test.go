package inventory

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/oauth"
)

// A tenant's history grows without bound (agents, tasks and revocations are
// never purged), so every listing must read an index in page order and
// every count an index range: never a whole table, never a sort of a
// tenant's history. The planner is told to avoid both wherever it can, so
// a plan that still has one has no index to use.
func TestEveryListingReadsAnIndexInPageOrder(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	v := &tenantView{trustDomain: spiffeid.RequireTrustDomainFromString("acme.example"), liveness: 90 * time.Second}
	now := time.Now().UTC()
	after := &keyset{at: now, id: uuid.Must(uuid.NewV7())}
	id := uuid.Must(uuid.NewV7())

	listings := map[string]query{
		"agents":                   agentsQuery(v, now, AgentFilter{}, nil, 50),
		"agents, next page":        agentsQuery(v, now, AgentFilter{}, after, 50),
		"live agents":              agentsQuery(v, now, AgentFilter{Status: AgentLive}, after, 50),
		"silent agents":            agentsQuery(v, now, AgentFilter{Status: AgentSilent}, after, 50),
		"revoked agents":           agentsQuery(v, now, AgentFilter{Status: AgentRevoked}, after, 50),
		"lineage-revoked agents":   agentsQuery(v, now, AgentFilter{Status: AgentLineageRevoked}, after, 50),
		"expired agents":           agentsQuery(v, now, AgentFilter{Status: AgentExpired}, after, 50),
		"agents of a task":         agentsQuery(v, now, AgentFilter{TaskID: id}, after, 50),
		"live agents of a task":    agentsQuery(v, now, AgentFilter{TaskID: id, Status: AgentLive}, after, 50),
		"tasks":                    tasksQuery(now, TaskFilter{}, after, 50),
		"active tasks":             tasksQuery(now, TaskFilter{Status: TaskActive}, after, 50),
		"completed tasks":          tasksQuery(now, TaskFilter{Status: TaskCompleted}, after, 50),
		"expired tasks":            tasksQuery(now, TaskFilter{Status: TaskExpired}, after, 50),
		"tasks of a principal":     tasksQuery(now, TaskFilter{Principal: "user:alice"}, after, 50),
		"denials":                  denialsQuery(DenialFilter{}, after, 50),
		"denials by check":         denialsQuery(DenialFilter{Check: oauth.CheckScope}, after, 50),
		"denials of a task":        denialsQuery(DenialFilter{TaskID: id}, after, 50),
		"denials of an agent":      denialsQuery(DenialFilter{AgentID: id}, after, 50),
		"denials of a client":      denialsQuery(DenialFilter{ClientID: "orch"}, after, 50),
		"revocations":              revocationsQuery(nil, 50),
		"revocations, next page":   revocationsQuery(after, 50),
		"children of an agent":     {agentSelect + ` WHERE a.task_id = @task AND a.parent_id = @parent ORDER BY a.created_at, a.id LIMIT 10`, with(statusArgs(v, now), "task", id, "parent", id)},
		"tokens of an agent":       {tokenSelect + ` WHERE t.agent_id = @agent ORDER BY t.issued_at DESC, t.jti DESC LIMIT 10`, pgx.NamedArgs{"agent": id}},
		"one agent and its chain":  {agentSelect + ` WHERE a.id = ANY ((SELECT ancestors FROM agents WHERE id = @agent)::uuid[]) ORDER BY a.depth`, with(statusArgs(v, now), "agent", id)},
		"one token":                {tokenSelect + ` WHERE t.jti = @jti`, pgx.NamedArgs{"jti": id}},
		"one task":                 {taskSelect + ` WHERE tk.id = @task`, pgx.NamedArgs{"now": now, "task": id}},
		"one denial":               {denialSelect + ` WHERE d.id = @id`, pgx.NamedArgs{"id": id}},
		"one revocation":           {revocationSelect + ` WHERE r.id = @id`, pgx.NamedArgs{"id": id}},
		"a task's agents by depth": {agentSelect + ` WHERE a.task_id = @task ORDER BY a.depth, a.created_at, a.id LIMIT 501`, with(statusArgs(v, now), "task", id)},
	}
	// These sort one task's or agent's rows (read through an index), never
	// a tenant's.
	sorts := map[string]bool{"one agent and its chain": true, "a task's agents by depth": true, "tokens of an agent": true}
	for i, q := range overviewQueries(v, now) {
		listings["overview "+string(rune('a'+i))] = q
		sorts["overview "+string(rune('a'+i))] = true // aggregates: top checks and medians sort their few rows
	}

	seqScan := regexp.MustCompile(`Seq Scan on (agents|tasks|tokens|denials|revocations)\b`)
	// A page is sorted when the rows its LIMIT takes come out of a sort
	// (an agent's few ancestors may be sorted inside, per row).
	pageSort := regexp.MustCompile(`\ALimit[^\n]*\n\s*->\s+(Incremental )?Sort`)
	for name, q := range listings {
		plan := explain(t, db, q)
		assert.NotRegexp(t, seqScan, plan, "%s reads a whole table:\n%s", name, plan)
		if !sorts[name] {
			assert.NotRegexp(t, pageSort, plan, "%s sorts instead of reading an index in order:\n%s", name, plan)
		}
	}
}

func with(args pgx.NamedArgs, kv ...any) pgx.NamedArgs {
	for i := 0; i < len(kv); i += 2 {
		args[kv[i].(string)] = kv[i+1]
	}
	return args
}

func explain(t *testing.T, db *pgstore.DB, q query) string {
	t.Helper()
	var lines []string
	err := db.InTenantTx(context.Background(), uuid.Must(uuid.NewV7()), func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off`); err != nil {
			return err
		}
		rows, err := tx.Query(context.Background(), "EXPLAIN "+q.sql, q.args)
		if err != nil {
			return err
		}
		lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}
