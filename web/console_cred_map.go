package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/oauth/inventory"
	"github.com/chitdev/chit/ui"
)

// How inventory's read model becomes the console's props: statuses become
// badge kinds, ids become links, lineage becomes trees.

// agentKind is the badge colour of an agent status: an agent whose chain
// was revoked is as revoked as one revoked itself (its label tells them apart).
func agentKind(s inventory.AgentStatus) string {
	if s == inventory.AgentLineageRevoked {
		return string(inventory.AgentRevoked)
	}
	return string(s)
}

func refTo(id *uuid.UUID, href func(uuid.UUID) string) ui.Ref {
	if id == nil || *id == uuid.Nil {
		return ui.Ref{}
	}
	return ui.Ref{ID: id.String(), Href: href(*id)}
}

func timeOr(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (p consolePaths) agentRow(a inventory.Agent, mayRevoke bool) ui.AgentRow {
	r := ui.AgentRow{ID: a.ID.String(), Href: p.agent(a.ID), Status: agentKind(a.Status), StatusLabel: a.Status.Label(),
		LastSeenAt: a.LastSeenAt, HeartbeatAge: a.HeartbeatAge, Task: ui.Ref{ID: a.TaskID.String(), Href: p.task(a.TaskID)},
		Principal: a.Principal, Depth: a.Depth, Scope: a.Scope, LiveTokens: a.LiveTokens}
	if mayRevoke && a.Status.HoldsAuthority() {
		r.RevokeHref = p.revoke(oauth.LevelAgent, a.ID)
	}
	return r
}

func (p consolePaths) taskRow(t inventory.Task, mayRevoke bool) ui.TaskRow {
	r := ui.TaskRow{ID: t.ID.String(), Href: p.task(t.ID), Status: string(t.Status), StatusLabel: t.Status.Label(),
		Principal: t.Principal, Purpose: t.Purpose, Scope: t.Scope, Agents: t.Agents, LiveAgents: t.LiveAgents,
		CreatedAt: t.CreatedAt, Deadline: t.Deadline}
	if mayRevoke && t.Status == inventory.TaskActive {
		r.RevokeHref = p.revoke(oauth.LevelTask, t.ID)
	}
	return r
}

func (p consolePaths) tokenRow(t inventory.Token, mayRevoke bool) ui.TokenRow {
	r := ui.TokenRow{JTI: t.JTI.String(), Href: p.token(t.JTI), State: string(t.State), StateLabel: t.State.Label(),
		Scope: t.Scope, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt, Revocation: refTo(t.RevocationID, p.revocation),
		Inherited: t.Inherited}
	if mayRevoke && t.State == inventory.TokenLive {
		r.RevokeHref = p.revoke(oauth.LevelToken, t.JTI)
	}
	return r
}

// Nodes of a lineage tree.

func (p consolePaths) principalNode(task inventory.Task) ui.TreeNode {
	return ui.TreeNode{Kind: "principal", Label: task.Principal, Scope: task.Scope,
		Href: withQuery(p.page("tasks"), map[string][]string{"principal": {task.Principal}}),
		Meta: "task " + ui.ShortID(task.ID.String())}
}

// agentNode is an agent with its scope and what it dropped of the scope
// above it (delegation only narrows); self is the page's own agent, not linked.
func (p consolePaths) agentNode(a inventory.Agent, narrowed []string, self bool) ui.TreeNode {
	n := ui.TreeNode{Kind: "agent", Label: ui.ShortID(a.ID.String()), Status: agentKind(a.Status), StatusLabel: a.Status.Label(),
		Scope: a.Scope, Meta: "depth " + strconv.Itoa(a.Depth)}
	if !self {
		n.Href = p.agent(a.ID)
	}
	if len(narrowed) > 0 {
		n.Meta += " · dropped " + strings.Join(narrowed, " ")
	}
	return n
}

func (p consolePaths) tokenNode(t inventory.Token, self bool) ui.TreeNode {
	n := ui.TreeNode{Kind: "token", Label: ui.ShortID(t.JTI.String()), Status: string(t.State), StatusLabel: t.State.Label(),
		Scope: t.Scope, Meta: "expires " + t.ExpiresAt.UTC().Format("15:04:05 UTC")}
	if !self {
		n.Href = p.token(t.JTI)
	}
	return n
}

// chainTree is principal → root agent → … → the last hop, with leaves
// under the last hop.
func (p consolePaths) chainTree(task inventory.Task, chain []inventory.Hop, selfLast bool, leaves []ui.TreeNode) []ui.TreeNode {
	nodes := make([]ui.TreeNode, len(chain))
	for i, h := range chain {
		nodes[i] = p.agentNode(h.Agent, h.Narrowed, selfLast && i == len(chain)-1)
	}
	under := leaves
	for i := len(nodes) - 1; i >= 0; i-- {
		nodes[i].Children = under
		under = []ui.TreeNode{nodes[i]}
	}
	root := p.principalNode(task)
	root.Children = under
	return []ui.TreeNode{root}
}

// endedTokensShown bounds how many ended tokens an agent shows in a task's
// tree beside its live ones; its own page lists them all.
const endedTokensShown = 3

// taskTree is a task's delegation tree: the principal, its root agents,
// under each its tokens (live ones all, then the newest ended ones) and
// its sub-agents.
func (p consolePaths) taskTree(d inventory.TaskDetail) []ui.TreeNode {
	var walk func(n *inventory.Node) ui.TreeNode
	walk = func(n *inventory.Node) ui.TreeNode {
		node := p.agentNode(n.Agent, n.Narrowed, false)
		ended, hidden := 0, 0
		for _, t := range n.Tokens {
			if t.State != inventory.TokenLive {
				if ended == endedTokensShown {
					hidden++
					continue
				}
				ended++
			}
			node.Children = append(node.Children, p.tokenNode(t, false))
		}
		if hidden > 0 {
			node.Meta += " · " + strconv.Itoa(hidden) + " older tokens on its page"
		}
		for _, c := range n.Children {
			node.Children = append(node.Children, walk(c))
		}
		return node
	}
	root := p.principalNode(d.Task)
	for _, n := range d.Lineage.Roots {
		root.Children = append(root.Children, walk(n))
	}
	return []ui.TreeNode{root}
}

func lineageNote(l inventory.Lineage) string {
	var notes []string
	if l.Truncated {
		notes = append(notes, "This task has more than "+strconv.Itoa(inventory.MaxLineageAgents)+
			" agents: the tree shows those nearest the principal.")
	}
	if l.TokensTruncated {
		notes = append(notes, "Its agents hold more than "+strconv.Itoa(inventory.MaxLineageTokens)+
			" tokens: live ones are all shown, then the newest.")
	}
	return strings.Join(notes, " ")
}

// revocationTarget links a revocation's target to its page by level.
func (p consolePaths) revocationTarget(r inventory.Revocation) ui.Ref {
	id, err := uuid.Parse(r.Target)
	if err != nil {
		return ui.Ref{ID: r.Target}
	}
	switch r.Level {
	case oauth.LevelToken:
		return ui.Ref{ID: r.Target, Href: p.token(id)}
	case oauth.LevelAgent, oauth.LevelChain:
		return ui.Ref{ID: r.Target, Href: p.agent(id)}
	case oauth.LevelTask:
		return ui.Ref{ID: r.Target, Href: p.task(id)}
	}
	return ui.Ref{ID: r.Target}
}

func (p consolePaths) revocationRow(r inventory.Revocation) ui.RevocationRow {
	return ui.RevocationRow{ID: r.ID.String(), Href: p.revocation(r.ID), RevokedAt: r.RevokedAt, Level: r.Level,
		Target: p.revocationTarget(r), RevokedBy: r.RevokedBy, Reason: r.Reason, Count: r.Count}
}

func (p consolePaths) denialRow(d inventory.Denial) ui.DenialRow {
	r := ui.DenialRow{ID: d.ID.String(), Href: p.denial(d.ID), Time: d.Time, Check: string(d.Check), Reason: d.Reason,
		Endpoint: d.Endpoint, Agent: refTo(d.AgentID, p.agent), Task: refTo(d.TaskID, p.task)}
	if d.ClientID != nil {
		r.ClientID = *d.ClientID
	}
	return r
}
