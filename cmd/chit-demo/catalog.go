package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// clientSpec is one client the demo registers: its name, kind and, for an
// orchestrator, what policy grants it. scripts/demo reads these through
// `chit-demo clients`, so the grants are written down once, here.
type clientSpec struct {
	Name      string
	Kind      string // orchestrator or resource-server, as `chit client create --kind` takes it
	Scopes    string // scope patterns granted (orchestrators)
	Audiences string // audiences granted (orchestrators)
}

// orchestratorSpec is an orchestrator of the demo and the work it hands out.
type orchestratorSpec struct {
	clientSpec
	// Resource is the resource server that serves Audience; it introspects
	// the tokens of this orchestrator's agents.
	Resource string
	Audience string
	Purposes []string
	// TaskScope is what every task asks for, within the grant.
	TaskScope string
	// HelperScopes are the narrower scopes the root agent delegates, one
	// per sub-agent; NestedScope is what the first sub-agent delegates on.
	HelperScopes []string
	NestedScope  string
	// Overreach is a scope outside the grant: a task asking for it is refused by policy.
	Overreach string
	// Overask is within the task but beyond the first sub-agent's scope: its
	// request to delegate it is refused.
	Overask string
}

var orchestrators = []orchestratorSpec{
	{
		clientSpec: clientSpec{Name: "support-triage", Kind: "orchestrator", Scopes: "tickets:* kb:read",
			Audiences: "https://tickets.example"},
		Resource: "tickets-api", Audience: "https://tickets.example",
		Purposes: []string{"triage ticket backlog", "draft replies to open tickets", "merge duplicate tickets",
			"escalate overdue priority-1 tickets", "tag tickets by product area"},
		TaskScope:    "tickets:read tickets:write kb:read",
		HelperScopes: []string{"tickets:read kb:read", "kb:read"},
		NestedScope:  "kb:read",
		Overreach:    "billing:refund",
		Overask:      "tickets:write",
	},
	{
		clientSpec: clientSpec{Name: "docs-assistant", Kind: "orchestrator", Scopes: "docs:read docs:write kb:read",
			Audiences: "https://docs.example"},
		Resource: "docs-api", Audience: "https://docs.example",
		Purposes: []string{"update the API reference", "summarise release notes", "fix broken links in the handbook",
			"answer a documentation question"},
		TaskScope:    "docs:read docs:write kb:read",
		HelperScopes: []string{"docs:read kb:read", "docs:read"},
		NestedScope:  "kb:read",
		Overreach:    "docs:publish",
		Overask:      "docs:write",
	},
	{
		clientSpec: clientSpec{Name: "release-coordinator", Kind: "orchestrator", Scopes: "ci:read ci:trigger repo:read",
			Audiences: "https://ci.example"},
		Resource: "ci-api", Audience: "https://ci.example",
		Purposes: []string{"prepare a release candidate", "investigate a flaky CI job", "bump dependency versions",
			"collect changes since the last release"},
		TaskScope:    "ci:read ci:trigger repo:read",
		HelperScopes: []string{"ci:read repo:read", "ci:read"},
		NestedScope:  "ci:read",
		Overreach:    "repo:write",
		Overask:      "ci:trigger",
	},
}

// resourceServers are the APIs the agents' tokens are for; each introspects
// the tokens presented to it.
var resourceServers = []clientSpec{
	{Name: "tickets-api", Kind: "resource-server"},
	{Name: "docs-api", Kind: "resource-server"},
	{Name: "ci-api", Kind: "resource-server"},
}

// demoClients is every client the demo needs, orchestrators first.
func demoClients() []clientSpec {
	var out []clientSpec
	for _, o := range orchestrators {
		out = append(out, o.clientSpec)
	}
	return append(out, resourceServers...)
}

// ending is how a task's story ends.
type ending int

const (
	completedByOrchestrator ending = iota
	completedByRootAgent
	helperRevoked // a sub-agent is revoked (level agent); the task then completes
	chainRevoked  // the root agent's whole chain is revoked; the task is then closed
	wentSilent    // the agents stop heartbeating and the orchestrator gives up: chit's liveness sweep revokes them
)

// plan is one task's story: what its agents do and which refusals they meet.
type plan struct {
	overreach bool // the task first asks for a scope outside the grant (refused by policy), then within it
	helpers   int  // sub-agents of the root agent
	nested    bool // the first sub-agent delegates once more (a lineage three agents deep)
	overask   bool // the first sub-agent asks to delegate more than it holds (refused: scope)
	replay    bool // the launcher presents the root's launch token a second time (refused: replay)
	renewals  int
	end       ending
}

// plans are dealt to tasks in turn, so every behaviour shows within the
// first ten tasks; most tasks complete.
var plans = []plan{
	{helpers: 1, renewals: 1, end: completedByOrchestrator},
	{overreach: true, helpers: 2, end: completedByRootAgent},
	{helpers: 2, nested: true, renewals: 2, end: completedByOrchestrator},
	{replay: true, helpers: 1, renewals: 1, end: completedByOrchestrator},
	{helpers: 2, overask: true, end: helperRevoked},
	{renewals: 1, end: completedByRootAgent},
	{helpers: 2, nested: true, end: chainRevoked},
	{helpers: 1, renewals: 1, end: completedByOrchestrator},
	{helpers: 1, end: wentSilent},
	{overreach: true, helpers: 2, overask: true, renewals: 1, end: completedByOrchestrator},
}

// revocationReasons are what a security team writes when it pulls an agent.
var revocationReasons = []string{
	"prompt injection suspected in a ticket attachment",
	"sub-agent requested records outside its queue",
	"anomalous burst of tool calls",
	"operator stopped the run",
}

// principals are the opaque ids of the people tasks act for. They are
// derived, not random, so the same people come back across runs.
var principals = func() []string {
	out := make([]string, 12)
	for i := range out {
		sum := sha256.Sum256([]byte("chit-demo principal " + strconv.Itoa(i)))
		out[i] = "user:" + hex.EncodeToString(sum[:6])
	}
	return out
}()

// joinScopes is a and b as one scope string.
func joinScopes(a, b string) string { return strings.TrimSpace(a + " " + b) }
