// Package inventory is the console's read model: what credentials a tenant
// has out now (agents, their delegation lineage, tokens, tasks) and what
// happened to them (denials, revocations). It only reads, always inside the
// tenant's row-level-security scope, so another tenant's object is simply
// not found.
//
// "Live" means what the issuer and introspection mean by it (oauth's live
// check and agentUsable): a token is live while it is unexpired and neither
// it, its agent, any agent above it in its delegation chain, nor its task
// has been revoked or completed; an agent holds authority while it, its
// chain and its task are unrevoked and the task's deadline has not passed.
//
// Principals, purposes and scopes are orchestrators' text, returned as
// stored: whoever renders them escapes them.
package inventory

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/oauth"
)

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Service answers the console's questions about one tenant at a time.
type Service struct {
	db    *pgstore.DB
	clock clock.Clock
}

// New returns a Service reading db; clk is the one clock ("now" for every
// status, age and window).
func New(db *pgstore.DB, clk clock.Clock) *Service {
	if clk == nil {
		clk = clock.System
	}
	return &Service{db: db, clock: clk}
}

// Page asks for one page of a listing, newest first.
type Page struct {
	// Cursor is the previous page's Next; "" for the first page.
	Cursor string
	// Limit is the page size: DefaultLimit when zero or less, at most MaxLimit.
	Limit int
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// keyset is a position in a listing ordered by (time DESC, id DESC). The
// cursor names its listing, so one listing's cursor is refused by another.
type keyset struct {
	at time.Time
	id uuid.UUID
}

func encodeCursor(listing string, at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(listing + "|" + at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

// parseCursor reads a cursor of listing; nil for the first page.
func parseCursor(listing, c string) (*keyset, error) {
	if c == "" {
		return nil, nil
	}
	bad := fault.InvalidField("cursor", "is not a cursor of this listing")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != listing {
		return nil, bad
	}
	at, err1 := time.Parse(time.RFC3339Nano, parts[1])
	id, err2 := uuid.Parse(parts[2])
	if err1 != nil || err2 != nil {
		return nil, bad
	}
	return &keyset{at: at, id: id}, nil
}

// query is one statement with named arguments (pgx.NamedArgs).
type query struct {
	sql  string
	args pgx.NamedArgs
}

// where joins conditions with AND; none is true.
func where(conds []string) string {
	if len(conds) == 0 {
		return "true"
	}
	return strings.Join(conds, " AND ")
}

// tenantView is what statuses and identities need from the tenant itself,
// read in the same transaction (the directory is readable in any scope).
type tenantView struct {
	trustDomain spiffeid.TrustDomain
	liveness    time.Duration
}

func readTenant(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) (*tenantView, error) {
	var td string
	var livenessSeconds int
	err := tx.QueryRow(ctx, `SELECT trust_domain, liveness_seconds FROM tenants WHERE id = $1`, tenantID).Scan(&td, &livenessSeconds)
	if err != nil {
		if err == pgx.ErrNoRows {
			return nil, notFound("tenant")
		}
		return nil, err
	}
	trust, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return nil, fault.Wrap(err, fault.Internal, "stored trust domain is invalid")
	}
	return &tenantView{trustDomain: trust, liveness: time.Duration(livenessSeconds) * time.Second}, nil
}

// spiffeID is an agent's SPIFFE ID, built as the issuer builds it.
func (v *tenantView) spiffeID(clientID string, taskID, agentID uuid.UUID) string {
	return oauth.AgentRef{TrustDomain: v.trustDomain, ClientID: clientID, TaskID: taskID, AgentID: agentID}.String()
}

func notFound(what string) error { return fault.New(fault.NotFound, "no such %s", what) }

// utc normalises a scanned time for display and comparison.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// seconds converts a count of seconds from SQL into a Duration, to the microsecond.
func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond)
}
