package oauth

import (
	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/verify"
)

// AgentRef is what an agent's SPIFFE ID says about it:
// spiffe://{trust-domain}/agent/{orch_id}/{task_id}/{instance_id}.
type AgentRef struct {
	TrustDomain spiffeid.TrustDomain
	ClientID    string // the orchestrator that launched the task
	TaskID      uuid.UUID
	AgentID     uuid.UUID
}

// SPIFFEID builds the agent's SPIFFE ID.
func (r AgentRef) SPIFFEID() (spiffeid.ID, error) {
	return spiffeid.FromSegments(r.TrustDomain, "agent", r.ClientID, r.TaskID.String(), r.AgentID.String())
}

// String is the SPIFFE ID as a URI; AgentRefs are built from valid parts.
func (r AgentRef) String() string {
	id, err := r.SPIFFEID()
	if err != nil {
		return ""
	}
	return id.String()
}

// ParseAgentRef parses an agent SPIFFE ID of trust domain td.
func ParseAgentRef(td spiffeid.TrustDomain, s string) (AgentRef, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return AgentRef{}, fault.InvalidField("sub", "is not a SPIFFE ID")
	}
	if id.TrustDomain() != td {
		return AgentRef{}, fault.InvalidField("sub", "belongs to another trust domain")
	}
	var segs [4]string
	n := 0
	for _, seg := range splitPath(id.Path()) {
		if n == 4 {
			return AgentRef{}, fault.InvalidField("sub", "is not an agent SPIFFE ID")
		}
		segs[n] = seg
		n++
	}
	if n != 4 || segs[0] != "agent" {
		return AgentRef{}, fault.InvalidField("sub", "is not an agent SPIFFE ID")
	}
	taskID, err1 := uuid.Parse(segs[2])
	agentID, err2 := uuid.Parse(segs[3])
	if err1 != nil || err2 != nil {
		return AgentRef{}, fault.InvalidField("sub", "is not an agent SPIFFE ID")
	}
	return AgentRef{TrustDomain: td, ClientID: segs[1], TaskID: taskID, AgentID: agentID}, nil
}

// inOtherTrustDomain reports whether s is a SPIFFE ID of a trust domain other than td.
func inOtherTrustDomain(td spiffeid.TrustDomain, s string) bool {
	id, err := spiffeid.FromString(s)
	return err == nil && id.TrustDomain() != td
}

func splitPath(p string) []string {
	var out []string
	start := 1 // go-spiffe paths start with "/"
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}

// Actor is one level of the RFC 8693 nested `act` claim: the outermost is
// the presenting agent, each inner one the agent that delegated to it. It is
// the verify package's type: issuer and verifier share one definition.
type Actor = verify.Actor

// NewActorChain nests SPIFFE IDs given presenting agent first, root last.
func NewActorChain(ids ...string) *Actor {
	var act *Actor
	for i := len(ids) - 1; i >= 0; i-- {
		act = &Actor{Sub: ids[i], Act: act}
	}
	return act
}
