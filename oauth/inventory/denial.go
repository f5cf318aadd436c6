package inventory

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/oauth"
)

// Denial is a refused request's why-denied trace (as GET /v1/denials/{id}
// shows it). Denials are kept oauth.DenialRetention.
type Denial struct {
	ID           uuid.UUID
	Time         time.Time
	Endpoint     string
	Check        oauth.Check
	Reason       string
	Expected     string
	Presented    string
	Rule         *string
	RevocationID *uuid.UUID
	ClientID     *string
	AgentID      *uuid.UUID
	TaskID       *uuid.UUID
}

// DenialFilter narrows Denials; zero fields do not filter.
type DenialFilter struct {
	Check    oauth.Check
	TaskID   uuid.UUID
	AgentID  uuid.UUID
	ClientID string
}

// DenialPage is one page of denials, newest first.
type DenialPage struct {
	Denials []Denial
	Next    string
}

// Checks are the checks a denial can name (SPEC §4.4), for filters.
var Checks = []oauth.Check{oauth.CheckSignature, oauth.CheckExpired, oauth.CheckReplay, oauth.CheckRevoked,
	oauth.CheckScope, oauth.CheckAudience, oauth.CheckPolicy, oauth.CheckDepth, oauth.CheckRenewalCap,
	oauth.CheckDeadline, oauth.CheckTenant, oauth.CheckFormat}

const denialSelect = `
	SELECT d.id, d.occurred_at, d.endpoint, d.check_name, d.reason, d.expected, d.presented, d.rule,
	       d.revocation_id, d.client_id, d.agent_id, d.task_id
	  FROM denials d`

// denialsQuery is the statement of one page of Denials.
func denialsQuery(f DenialFilter, after *keyset, limit int) query {
	args := pgx.NamedArgs{}
	var conds []string
	if f.Check != "" {
		args["check"] = string(f.Check)
		conds = append(conds, "d.check_name = @check")
	}
	if f.TaskID != uuid.Nil {
		args["task"] = f.TaskID
		conds = append(conds, "d.task_id = @task")
	}
	if f.AgentID != uuid.Nil {
		args["agent"] = f.AgentID
		conds = append(conds, "d.agent_id = @agent")
	}
	if f.ClientID != "" {
		args["client"] = f.ClientID
		conds = append(conds, "d.client_id = @client")
	}
	if after != nil {
		args["after_at"], args["after_id"] = after.at, after.id
		conds = append(conds, "(d.occurred_at, d.id) < (@after_at, @after_id)")
	}
	args["limit"] = limit + 1
	return query{denialSelect + ` WHERE ` + where(conds) + ` ORDER BY d.occurred_at DESC, d.id DESC LIMIT @limit`, args}
}

// Denials lists the tenant's recorded denials, newest first.
func (s *Service) Denials(ctx context.Context, tenantID uuid.UUID, f DenialFilter, p Page) (DenialPage, error) {
	if f.Check != "" && !slices.Contains(Checks, f.Check) {
		return DenialPage{}, fault.InvalidField("check", "is not a check chit makes")
	}
	after, err := parseCursor("denials", p.Cursor)
	if err != nil {
		return DenialPage{}, err
	}
	limit := p.limit()
	out := DenialPage{Denials: []Denial{}}
	err = s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		out.Denials, err = collectDenials(ctx, tx, denialsQuery(f, after, limit))
		return err
	})
	if err != nil {
		return DenialPage{}, err
	}
	if len(out.Denials) > limit {
		out.Denials = out.Denials[:limit]
		last := out.Denials[limit-1]
		out.Next = encodeCursor("denials", last.Time, last.ID)
	}
	return out, nil
}

// Denial returns one denial's trace. Returns a NotFound fault for a denial
// the tenant does not have (or no longer keeps).
func (s *Service) Denial(ctx context.Context, tenantID, id uuid.UUID) (Denial, error) {
	var list []Denial
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		list, err = collectDenials(ctx, tx, query{denialSelect + ` WHERE d.id = @id`, pgx.NamedArgs{"id": id}})
		return err
	})
	if err != nil {
		return Denial{}, err
	}
	if len(list) == 0 {
		return Denial{}, notFound("denial")
	}
	return list[0], nil
}

func collectDenials(ctx context.Context, tx pgx.Tx, q query) ([]Denial, error) {
	rows, err := tx.Query(ctx, q.sql, q.args)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Denial, error) {
		var d Denial
		var check string
		err := r.Scan(&d.ID, &d.Time, &d.Endpoint, &check, &d.Reason, &d.Expected, &d.Presented, &d.Rule,
			&d.RevocationID, &d.ClientID, &d.AgentID, &d.TaskID)
		d.Check, d.Time = oauth.Check(check), d.Time.UTC()
		return d, err
	})
}
