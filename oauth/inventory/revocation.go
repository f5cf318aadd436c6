package inventory

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Revocation is one revocation: what it targeted, who asked and how much
// it revoked.
type Revocation struct {
	ID        uuid.UUID
	Level     string // oauth.LevelToken, LevelAgent, LevelTask or LevelChain
	Target    string // a jti, agent_id or task_id
	TaskID    *uuid.UUID
	Reason    string // free text from whoever revoked
	RevokedBy string // "client:<id>", "agent:<id>" or "system:liveness"
	Count     int    // tokens and agents it revoked
	RevokedAt time.Time
	// Renewal: an agent replaced its own token. Renewals are routine and
	// left out of Revocations; a token shows its renewal as state renewed.
	Renewal bool
}

// RevocationPage is one page of revocations, newest first.
type RevocationPage struct {
	Revocations []Revocation
	Next        string
}

const (
	// listedRevocationSQL is every revocation but renewals (not renewalSQL),
	// written as the partial index revocations_listed has it.
	listedRevocationSQL = `(r.level <> 'token' OR r.revoked_by NOT LIKE 'agent:%')`

	revocationSelect = `
	SELECT r.id, r.level, r.target, r.task_id, r.reason, r.revoked_by, r.revoked_count, r.revoked_at, ` + renewalSQL + `
	  FROM revocations r`
)

// revocationsQuery is the statement of one page of Revocations.
func revocationsQuery(after *keyset, limit int) query {
	args := pgx.NamedArgs{"limit": limit + 1}
	conds := []string{listedRevocationSQL}
	if after != nil {
		args["after_at"], args["after_id"] = after.at, after.id
		conds = append(conds, "(r.revoked_at, r.id) < (@after_at, @after_id)")
	}
	return query{revocationSelect + ` WHERE ` + where(conds) + ` ORDER BY r.revoked_at DESC, r.id DESC LIMIT @limit`, args}
}

// Revocations lists the tenant's revocations, newest first, renewals left
// out: revocations at the four levels, task completions (level task) and
// the liveness sweep's.
func (s *Service) Revocations(ctx context.Context, tenantID uuid.UUID, p Page) (RevocationPage, error) {
	after, err := parseCursor("revocations", p.Cursor)
	if err != nil {
		return RevocationPage{}, err
	}
	limit := p.limit()
	out := RevocationPage{Revocations: []Revocation{}}
	err = s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		out.Revocations, err = collectRevocations(ctx, tx, revocationsQuery(after, limit))
		return err
	})
	if err != nil {
		return RevocationPage{}, err
	}
	if len(out.Revocations) > limit {
		out.Revocations = out.Revocations[:limit]
		last := out.Revocations[limit-1]
		out.Next = encodeCursor("revocations", last.RevokedAt, last.ID)
	}
	return out, nil
}

// Revocation returns one revocation, renewals included. Returns a NotFound
// fault for a revocation the tenant does not have.
func (s *Service) Revocation(ctx context.Context, tenantID, id uuid.UUID) (Revocation, error) {
	var list []Revocation
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		var err error
		list, err = collectRevocations(ctx, tx, query{revocationSelect + ` WHERE r.id = @id`, pgx.NamedArgs{"id": id}})
		return err
	})
	if err != nil {
		return Revocation{}, err
	}
	if len(list) == 0 {
		return Revocation{}, notFound("revocation")
	}
	return list[0], nil
}

func collectRevocations(ctx context.Context, tx pgx.Tx, q query) ([]Revocation, error) {
	rows, err := tx.Query(ctx, q.sql, q.args)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Revocation, error) {
		var r Revocation
		err := row.Scan(&r.ID, &r.Level, &r.Target, &r.TaskID, &r.Reason, &r.RevokedBy, &r.Count, &r.RevokedAt, &r.Renewal)
		r.RevokedAt = r.RevokedAt.UTC()
		return r, err
	})
}
