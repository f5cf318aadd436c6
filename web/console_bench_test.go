package web_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/tenants/policy"
)

// BenchmarkConsolePages measures a signed-in page view end to end over
// HTTP (session lookup, role, queries, render) on a tenant with 20 tasks of
// 5 agents each (a root, two sub-agents, one sub-sub-agent under each) and their tokens.
func BenchmarkConsolePages(b *testing.B) {
	env := chittest.Start(b)
	acme := env.NewTenant("acme", []string{"tickets:*"}, []string{"https://tickets.example"})
	orch := acme.ClientToken(acme.Orchestrator)
	var task string
	for range 20 {
		id := acme.CreateTask(orch, "tickets:read tickets:write", []string{"https://tickets.example"})
		task = id.String()
		root := acme.Register(acme.LaunchToken(orch, id, ""))
		root.Exchange("")
		for range 2 {
			child := acme.Register(launchOf(b, root.Delegate("tickets:read")))
			child.Exchange("")
			acme.Register(launchOf(b, child.Delegate("tickets:read"))).Exchange("")
		}
	}
	br := env.Browser()
	br.Login(acme.ConsoleUser(policy.RoleAdmin), chittest.ConsolePassword)
	for _, page := range []struct{ name, path string }{
		{"overview", "/console/t/acme/"},
		{"agents", "/console/t/acme/agents"},
		{"task-lineage", "/console/t/acme/tasks/" + task},
		{"denials", "/console/t/acme/denials"},
		{"audit", "/console/t/acme/audit"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				if p := br.Get(page.path); p.Status != http.StatusOK {
					b.Fatalf("%s: %d", page.path, p.Status)
				}
			}
		})
	}
}

func launchOf(b *testing.B, r *chittest.Response) string {
	b.Helper()
	if r.Status != http.StatusCreated {
		b.Fatalf("delegation: %d %s", r.Status, strconv.Quote(string(r.Body)))
	}
	var out struct {
		LaunchToken string `json:"launch_token"`
	}
	r.JSON(b, &out)
	return out.LaunchToken
}
