package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
)

type feedPage struct {
	Revocations []struct {
		ID     string `json:"revocation_id"`
		Cursor string `json:"cursor"`
		Level  string `json:"level"`
		Target string `json:"target"`
		TaskID string `json:"task_id"`
	} `json:"revocations"`
	NextCursor string `json:"next_cursor"`
}

// readFeed polls until the feed after cursor holds at least want items: a
// revocation appears once every older transaction in the cluster has ended.
func readFeed(t *testing.T, tn *chittest.Tenant, bearer, after string, want int) feedPage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := tn.Env.Do(http.MethodGet, tn.Issuer+"/v1/revocations?after="+after, "", bearer, nil)
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		var page feedPage
		resp.JSON(t, &page)
		if len(page.Revocations) >= want || time.Now().After(deadline) {
			return page
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRevocationFeed(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	orch := tn.ClientToken(tn.Orchestrator)
	rs := tn.ClientToken(tn.Resource)
	task := tn.CreateTask(orch, "tickets:read", []string{api})
	agent := tn.Register(tn.LaunchToken(orch, task, ""))
	tok := agent.Exchange("")

	page := readFeed(t, tn, rs, "", 0)
	require.Empty(t, page.Revocations)
	start := page.NextCursor

	jti := chittest.Claims(t, tok)["jti"].(string)
	resp := tn.PostJSON("/v1/revocations", orch, map[string]string{"level": "token", "target": jti, "reason": "leaked"})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	resp = tn.PostJSON("/v1/tasks/"+task.String()+"/complete", orch, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))

	page = readFeed(t, tn, rs, start, 2)
	require.Len(t, page.Revocations, 2)
	require.Equal(t, "token", page.Revocations[0].Level)
	require.Equal(t, jti, page.Revocations[0].Target)
	require.Equal(t, "task", page.Revocations[1].Level, "task completion appears as a task revocation")
	require.Equal(t, task.String(), page.Revocations[1].TaskID)
	require.Equal(t, page.Revocations[1].Cursor, page.NextCursor)

	again := readFeed(t, tn, rs, page.NextCursor, 0)
	require.Empty(t, again.Revocations, "a reader resumes after what it has seen")
	require.Equal(t, page.NextCursor, again.NextCursor)

	resp = env.Do(http.MethodGet, tn.Issuer+"/v1/revocations", "", orch, nil)
	require.Equal(t, http.StatusForbidden, resp.Status, "only clients holding the feed rule read it")
	resp = env.Do(http.MethodGet, tn.Issuer+"/v1/revocations?after=garbage", "", rs, nil)
	require.Equal(t, http.StatusBadRequest, resp.Status)
}

func TestRevocationEventStream(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	orch := tn.ClientToken(tn.Orchestrator)
	rs := tn.ClientToken(tn.Resource)
	task := tn.CreateTask(orch, "tickets:read", []string{api})
	agent := tn.Register(tn.LaunchToken(orch, task, ""))
	agent.Exchange("")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tn.Issuer+"/v1/revocations", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+rs)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()

	revoked := time.Now()
	r := tn.PostJSON("/v1/revocations", orch, map[string]string{"level": "agent", "target": agent.ID.String(), "reason": "compromised"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	select {
	case data := <-events:
		var it struct{ Level, Target string }
		require.NoError(t, json.Unmarshal([]byte(data), &it))
		require.Equal(t, "agent", it.Level)
		require.Equal(t, agent.ID.String(), it.Target)
		t.Logf("revocation reached the event stream %s after it was answered", time.Since(revoked))
		m := env.Do(http.MethodGet, env.URL+"/metrics", "", "", nil)
		require.Contains(t, string(m.Body), "chit_revocation_propagation_seconds_count 1", "the delivery is measured")
	case <-time.After(10 * time.Second):
		t.Fatal("no revocation event within 10 s")
	}
}

func TestOutstandingGauges(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	orch := tn.ClientToken(tn.Orchestrator)
	task := tn.CreateTask(orch, "tickets:read", []string{api})
	agent := tn.Register(tn.LaunchToken(orch, task, ""))
	agent.Exchange("")
	m := env.Do(http.MethodGet, env.URL+"/metrics", "", "", nil)
	require.Contains(t, string(m.Body), "chit_live_agents 1\n")
	require.Contains(t, string(m.Body), "chit_tokens_outstanding 2\n", "the orchestrator's token and the agent's")
}
