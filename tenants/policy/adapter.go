package policy

import (
	"context"
	"errors"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
)

// Adapter is the Casbin adapter of one tenant's rules, stored in
// policy_grants and console_roles (migrations/00003_policy.sql).
//
// One adapter (and one enforcer) per tenant, not one for all tenants:
//   - Row-level security shows a transaction only its tenant's rows, and
//     the application role cannot bypass it. Each tenant's rules are read
//     inside that tenant's scope, as every other query is; no role, view
//     or SECURITY DEFINER function is given a way around the policy.
//   - Casbin evaluates its matcher against every loaded rule of the model
//     in turn; a single enforcer holding every tenant's rules would make
//     each check cost grow with the number of tenants. A tenant's own
//     enforcer costs what that tenant's rules cost, however many tenants
//     there are, and a tenant's change reloads only that tenant.
//   - Isolation is structural: tenant B's enforcer never holds tenant A's
//     rules. The domain in the model (the tenant id) is a second fence.
//
// At start the service reads every tenant's rules in one transaction and
// one round trip (loadAll): it lists the tenant directory, readable without
// a scope, and pipelines, per tenant, "set the scope, select the rules".
//
// The adapter is read-only. Casbin's write methods carry neither a
// transaction nor a context, while every policy change must be written
// with its audit event and its change notification in one transaction
// (Service.Grant, Revoke, AssignRole, RevokeRole), so they refuse. For the
// same reason a BatchAdapter would add nothing.
type Adapter struct {
	db       *pgstore.DB
	tenantID uuid.UUID
}

var (
	_ persist.Adapter        = (*Adapter)(nil)
	_ persist.ContextAdapter = (*Adapter)(nil)
)

// NewAdapter returns the adapter of one tenant's rules.
func NewAdapter(db *pgstore.DB, tenantID uuid.UUID) *Adapter {
	return &Adapter{db: db, tenantID: tenantID}
}

// ErrReadOnly is returned by the adapter's write methods.
var ErrReadOnly = errors.New("policy adapter is read-only: change rules through policy.Service, which audits them")

// loadTimeout bounds a load started without a context (Casbin's LoadPolicy).
const loadTimeout = 10 * time.Second

// LoadPolicy loads the tenant's rules into m.
func (a *Adapter) LoadPolicy(m model.Model) error {
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	return a.LoadPolicyCtx(ctx, m)
}

// LoadPolicyCtx loads the tenant's rules into m.
func (a *Adapter) LoadPolicyCtx(ctx context.Context, m model.Model) error {
	lines, err := a.lines(ctx)
	if err != nil {
		return err
	}
	return addLines(m, lines)
}

// lines reads the tenant's rules as Casbin lines, inside its scope.
func (a *Adapter) lines(ctx context.Context) ([][]string, error) {
	var lines [][]string
	err := a.db.InTenantTx(ctx, a.tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, rulesQuery, a.tenantID)
		if err != nil {
			return err
		}
		lines, err = collectLines(rows, a.tenantID.String())
		return err
	})
	return lines, err
}

// rulesQuery returns a tenant's rules as (ptype, subject, object, action).
// The more specific pattern of a client comes first, so the rule an
// allowed check reports is the narrowest that matched.
const rulesQuery = `
	SELECT ptype, subject, object, action FROM (
	  SELECT 'p' AS ptype, client_id AS subject, object, action FROM policy_grants WHERE tenant_id = $1
	  UNION ALL
	  SELECT 'g', user_id, role, '' FROM console_roles WHERE tenant_id = $1
	) r
	ORDER BY ptype DESC, subject, action, length(object) DESC, object`

// collectLines turns rule rows into Casbin lines, ptype first:
// p, client:{id}, {tenant}, {object}, {action} and g, user:{id}, role:{role}, {tenant}.
func collectLines(rows pgx.Rows, domain string) ([][]string, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
		var ptype, subject, object, action string
		if err := row.Scan(&ptype, &subject, &object, &action); err != nil {
			return nil, err
		}
		if ptype == "g" {
			return []string{"g", casbinUserPrefix + subject, casbinRolePrefix + object, domain}, nil
		}
		return []string{"p", casbinClientPrefix + subject, domain, object, action}, nil
	})
}

func addLines(m model.Model, lines [][]string) error {
	for _, l := range lines {
		if err := persist.LoadPolicyArray(l, m); err != nil {
			return fault.Wrap(err, fault.Internal, "load policy rule")
		}
	}
	return nil
}

// loadAll reads every tenant's rules in one transaction and one round
// trip. Tenants without rules are absent from the result.
func loadAll(ctx context.Context, db *pgstore.DB) (map[uuid.UUID][][]string, error) {
	all := make(map[uuid.UUID][][]string)
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM tenants ORDER BY id`)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil || len(ids) == 0 {
			return err
		}
		batch := &pgx.Batch{}
		for _, id := range ids {
			// The scope is per transaction (set_config's is_local): each
			// tenant's select runs in its own tenant's scope in turn.
			batch.Queue("SELECT set_config($1, $2, true)", pgstore.TenantSetting, id.String())
			batch.Queue(rulesQuery, id)
		}
		br := tx.SendBatch(ctx, batch)
		defer br.Close()
		for _, id := range ids {
			if _, err := br.Exec(); err != nil {
				return err
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			lines, err := collectLines(rows, id.String())
			if err != nil {
				return err
			}
			if len(lines) > 0 {
				all[id] = lines
			}
		}
		return br.Close()
	})
	return all, err
}

// SavePolicy refuses: see Adapter.
func (a *Adapter) SavePolicy(model.Model) error { return ErrReadOnly }

// AddPolicy refuses: see Adapter.
func (a *Adapter) AddPolicy(string, string, []string) error { return ErrReadOnly }

// RemovePolicy refuses: see Adapter.
func (a *Adapter) RemovePolicy(string, string, []string) error { return ErrReadOnly }

// RemoveFilteredPolicy refuses: see Adapter.
func (a *Adapter) RemoveFilteredPolicy(string, string, int, ...string) error { return ErrReadOnly }

// SavePolicyCtx refuses: see Adapter.
func (a *Adapter) SavePolicyCtx(context.Context, model.Model) error { return ErrReadOnly }

// AddPolicyCtx refuses: see Adapter.
func (a *Adapter) AddPolicyCtx(context.Context, string, string, []string) error { return ErrReadOnly }

// RemovePolicyCtx refuses: see Adapter.
func (a *Adapter) RemovePolicyCtx(context.Context, string, string, []string) error {
	return ErrReadOnly
}

// RemoveFilteredPolicyCtx refuses: see Adapter.
func (a *Adapter) RemoveFilteredPolicyCtx(context.Context, string, string, int, ...string) error {
	return ErrReadOnly
}
