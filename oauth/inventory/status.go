package inventory

import "github.com/chitdev/chit/internal/fault"

// AgentStatus is where an agent instance stands now. The order of the checks
// is the issuer's (oauth agentUsable and the live check): revoked first, then
// a revoked delegation chain, then the task's deadline.
type AgentStatus string

// Agent statuses.
const (
	// AgentLive: the agent holds authority and has been heard from within
	// the tenant's liveness window.
	AgentLive AgentStatus = "live"
	// AgentSilent: the agent still holds authority but has not been heard
	// from for the liveness window; the next liveness sweep revokes it.
	AgentSilent AgentStatus = "silent"
	// AgentRevoked: the agent itself was revoked, or its task was completed.
	AgentRevoked AgentStatus = "revoked"
	// AgentLineageRevoked: an agent above it in its delegation chain was
	// revoked, which ends its authority too.
	AgentLineageRevoked AgentStatus = "lineage_revoked"
	// AgentExpired: its task's deadline passed without the task being completed.
	AgentExpired AgentStatus = "expired"
)

// Label is the status in words, shown beside its colour.
func (s AgentStatus) Label() string {
	switch s {
	case AgentLive:
		return "Live"
	case AgentSilent:
		return "Silent (no heartbeat)"
	case AgentRevoked:
		return "Revoked"
	case AgentLineageRevoked:
		return "Revoked (delegation chain)"
	case AgentExpired:
		return "Expired (task deadline passed)"
	}
	return string(s)
}

// HoldsAuthority reports whether the agent may still get and use tokens.
func (s AgentStatus) HoldsAuthority() bool { return s == AgentLive || s == AgentSilent }

// ParseAgentStatus reads a status filter: "" for any, or one of the
// statuses. As a filter, AgentLive also matches silent agents (both hold
// authority) and AgentRevoked also matches lineage-revoked ones.
func ParseAgentStatus(s string) (AgentStatus, error) {
	switch st := AgentStatus(s); st {
	case "", AgentLive, AgentSilent, AgentRevoked, AgentLineageRevoked, AgentExpired:
		return st, nil
	}
	return "", fault.InvalidField("status", "must be live, silent, revoked, lineage_revoked or expired")
}

// TaskStatus is where a task stands now.
type TaskStatus string

// Task statuses.
const (
	TaskActive    TaskStatus = "active"    // neither completed nor past its deadline
	TaskCompleted TaskStatus = "completed" // completed (or revoked at task level): every credential under it ended
	TaskExpired   TaskStatus = "expired"   // its deadline passed without completion; its tokens expired with it
)

// Label is the status in words.
func (s TaskStatus) Label() string {
	switch s {
	case TaskActive:
		return "Active"
	case TaskCompleted:
		return "Completed"
	case TaskExpired:
		return "Expired (deadline passed)"
	}
	return string(s)
}

// ParseTaskStatus reads a status filter: "" for any, or one of the statuses.
func ParseTaskStatus(s string) (TaskStatus, error) {
	switch st := TaskStatus(s); st {
	case "", TaskActive, TaskCompleted, TaskExpired:
		return st, nil
	}
	return "", fault.InvalidField("status", "must be active, completed or expired")
}

// TokenState is whether a token would be accepted now, and if not why.
type TokenState string

// Token states.
const (
	TokenLive    TokenState = "live"    // a resource server accepts it now
	TokenExpired TokenState = "expired" // its exp passed before anything revoked it
	TokenRevoked TokenState = "revoked" // revoked: itself, or its agent, an agent above it, or its task
	TokenRenewed TokenState = "renewed" // replaced by its successor when the agent renewed it
)

// Label is the state in words.
func (s TokenState) Label() string {
	switch s {
	case TokenLive:
		return "Live"
	case TokenExpired:
		return "Expired"
	case TokenRevoked:
		return "Revoked"
	case TokenRenewed:
		return "Renewed"
	}
	return string(s)
}
