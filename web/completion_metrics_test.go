package web_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgtest"
)

// A completed task reports how long its credentials were good for against
// how long it ran, and what validity the completion cut off.
func TestCompletionReportsCredentialLifetimeAgainstTaskDuration(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	clk := clock.NewManual(time.Now())
	env := chittest.StartWith(t, db, chittest.Options{Clock: clk})
	acme := env.NewTenant("acme", []string{"tickets:*"}, []string{"https://tickets.example"})
	orch := acme.ClientToken(acme.Orchestrator)
	task := acme.CreateTask(orch, "tickets:read", []string{"https://tickets.example"})
	acme.Register(acme.LaunchToken(orch, task, "tickets:read")).Exchange("tickets:read") // valid 5 min

	clk.Advance(2 * time.Minute) // the task ran 2 min; its token had 3 min left
	resp := acme.PostJSON("/v1/tasks/"+task.String()+"/complete", orch, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))

	r, err := http.Get(env.URL + "/metrics")
	require.NoError(t, err)
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	value := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + name + ` ([0-9.e+]+)$`).FindSubmatch(body)
		require.NotNil(t, m, name)
		v, err := strconv.ParseFloat(string(m[1]), 64)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, 1.0, value("chit_task_credential_lifetime_ratio_count"))
	require.InDelta(t, 2.5, value("chit_task_credential_lifetime_ratio_sum"), 0.05, "5 min of credentials for a 2 min task")
	require.Equal(t, 1.0, value("chit_task_credential_time_left_seconds_count"))
	require.InDelta(t, 180, value("chit_task_credential_time_left_seconds_sum"), 2)
}
