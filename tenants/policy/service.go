package policy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
)

// Service holds every tenant's policy in memory, answers checks from it,
// and changes it in the database. Safe for concurrent use.
type Service struct {
	db      *pgstore.DB
	clock   clock.Clock
	log     *slog.Logger
	watcher *Watcher
	ctx     context.Context // ends at Close; bounds the watcher's reloads
	cancel  context.CancelFunc

	// state maps a tenant to its compiled policy. It is replaced, never
	// changed in place, so checks read it without a lock; reloadMu orders
	// the replacements, so a reload that read the database earlier never
	// overwrites one that read it later.
	state    atomic.Pointer[map[uuid.UUID]*tenantPolicy]
	reloadMu sync.Mutex
}

// tenantPolicy is one tenant's compiled policy: an enforcer that is never
// changed once built (concurrent Enforce calls on it are safe, as
// SyncedEnforcer relies on), each client's grants for explanations, and a
// memo of the enforcer's answers.
//
// The memo is what keeps the check off the request path's budget: Casbin
// evaluates its matcher against each of the tenant's rules in turn (about
// 0.35 µs and 3 allocations per rule), so a tenant of a few hundred rules
// costs ~100 µs per scope. Answers of an immutable enforcer never go
// stale, and a change replaces the whole tenantPolicy, memo included. The
// memo is bounded (memoMax entries, then it starts over), so requests
// naming ever new scopes cannot grow memory.
type tenantPolicy struct {
	domain   string
	enforcer *casbin.Enforcer
	clients  map[string]*clientGrants

	memoMu sync.RWMutex
	memo   map[memoKey]memoEntry
}

type memoKey struct {
	client, item string
	act          Action
}

type memoEntry struct {
	ok   bool
	rule string // the matching rule's line when ok
}

const (
	memoMax     = 4096
	memoItemMax = MaxAudience // longer items (invalid anyway) are not memoised
)

// enforce answers whether client may use item for act, and which rule
// allows it.
func (tp *tenantPolicy) enforce(log *slog.Logger, clientID, item string, act Action) (bool, string) {
	k := memoKey{clientID, item, act}
	tp.memoMu.RLock()
	e, hit := tp.memo[k]
	tp.memoMu.RUnlock()
	if hit {
		return e.ok, e.rule
	}
	ok, explain, err := tp.enforcer.EnforceEx(casbinClientPrefix+clientID, tp.domain, item, string(act))
	if err != nil {
		log.Error("policy: enforce failed; refusing", "tenant", tp.domain, "client", clientID, "err", err)
		return false, ""
	}
	if ok && len(explain) == 4 {
		e = memoEntry{ok: true, rule: ruleString(explain[0], explain[1], explain[2], Action(explain[3]))}
	}
	if len(item) <= memoItemMax {
		tp.memoMu.Lock()
		if len(tp.memo) >= memoMax {
			clear(tp.memo)
		}
		tp.memo[k] = e
		tp.memoMu.Unlock()
	}
	return e.ok, e.rule
}

type clientGrants struct {
	scopes    []string
	audiences []string
	caps      Caps
}

// reloadTimeout bounds one reload triggered by a notification.
const reloadTimeout = 10 * time.Second

// New loads every tenant's policy and starts following changes made by
// any replica. It fails when the database cannot be read or listened to.
// A nil log discards.
func New(ctx context.Context, db *pgstore.DB, clk clock.Clock, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, clock: clk, log: log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	empty := map[uuid.UUID]*tenantPolicy{}
	s.state.Store(&empty)

	// Listen first, load second: a change committed in between is either
	// in the load or notified after it.
	w, err := NewWatcher(ctx, db, log)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.watcher = w
	_ = w.SetUpdateCallback(s.onChange)
	if err := s.reloadAll(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops following changes. Checks keep answering from the last state.
func (s *Service) Close() {
	s.cancel()
	s.watcher.Close()
}

// Rule is one stored grant.
type Rule struct {
	ClientID  string
	Action    Action // ActScope, ActAudience, ActIntrospect, ActFeed, ActMaxTaskTTL, ActMaxDepth
	Pattern   string // a scope pattern, an audience, `*` (introspect, feed) or a cap (seconds, depth)
	GrantedAt time.Time
	GrantedBy string
}

// Grant lets clientID, an orchestrator of the tenant, put scopes matching
// the given patterns and the given audiences in its tasks. Scopes and
// audiences are granted independently; either may be empty, not both.
// Granting what is granted already changes nothing. The change and its
// audit event (actor, client, patterns) are written in one transaction,
// which notifies every replica when it commits.
//
// Errors: fault.NotFound "no such client", fault.Invalid for a bad pattern
// or audience, or a client that is not an orchestrator.
func (s *Service) Grant(ctx context.Context, tenantID uuid.UUID, clientID string, scopes, audiences []string, actor string) error {
	scopes, audiences, err := normalize(scopes, audiences)
	if err != nil {
		return err
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	actions, objects := flatten(scopes, audiences)
	now := s.clock.Now().Truncate(time.Microsecond)
	var added int64
	err = s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		kind, err := clientKind(ctx, tx, clientID)
		if err != nil {
			return err
		}
		if kind != "orchestrator" {
			return fault.InvalidField("client", "%s is a %s client: scopes and audiences are granted to orchestrators", clientID, kind)
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO policy_grants (tenant_id, client_id, action, object, granted_at, granted_by)
			SELECT $1, $2, t.action, t.object, $5, $6
			  FROM unnest($3::text[], $4::text[]) AS t(action, object)
			ON CONFLICT DO NOTHING`,
			tenantID, clientID, actions, objects, now, actor)
		if err != nil {
			return err
		}
		added = tag.RowsAffected()
		err = audit.Append(ctx, tx, tenantID, audit.Event{
			Time: now, Type: audit.PolicyGranted, Actor: actor, ClientID: clientID,
			Detail: map[string]any{"scopes": scopes, "audiences": audiences, "added": added},
		})
		if err != nil || added == 0 {
			return err
		}
		return NotifyTx(ctx, tx, tenantID)
	})
	if err != nil {
		return err
	}
	if added > 0 {
		s.refresh(ctx, tenantID)
	}
	return nil
}

// Revoke removes grants of exactly these patterns and audiences (revoking
// `tickets:read` does not narrow a grant of `tickets:*`). If any of them is
// not granted, nothing changes and the error (fault.NotFound) names them:
// an operator who mistyped a pattern must not believe it revoked.
func (s *Service) Revoke(ctx context.Context, tenantID uuid.UUID, clientID string, scopes, audiences []string, actor string) error {
	scopes, audiences, err := normalize(scopes, audiences)
	if err != nil {
		return err
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	actions, objects := flatten(scopes, audiences)
	now := s.clock.Now().Truncate(time.Microsecond)
	err = s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		if _, err := clientKind(ctx, tx, clientID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			DELETE FROM policy_grants g
			 USING unnest($3::text[], $4::text[]) AS t(action, object)
			 WHERE g.tenant_id = $1 AND g.client_id = $2 AND g.action = t.action AND g.object = t.object
			RETURNING g.action || ' ' || g.object`,
			tenantID, clientID, actions, objects)
		if err != nil {
			return err
		}
		deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(deleted) != len(actions) {
			return notGranted(clientID, actions, objects, deleted)
		}
		err = audit.Append(ctx, tx, tenantID, audit.Event{
			Time: now, Type: audit.PolicyRevoked, Actor: actor, ClientID: clientID,
			Detail: map[string]any{"scopes": scopes, "audiences": audiences, "removed": len(deleted)},
		})
		if err != nil {
			return err
		}
		return NotifyTx(ctx, tx, tenantID)
	})
	if err != nil {
		return err
	}
	s.refresh(ctx, tenantID)
	return nil
}

// List returns the tenant's grants, by client, action and pattern, as
// stored (the database, not this replica's memory, is the authority).
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]Rule, error) {
	var list []Rule
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT client_id, action, object, granted_at, granted_by
			  FROM policy_grants WHERE tenant_id = $1
			 ORDER BY client_id, action DESC, object`, tenantID)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rule, error) {
			var r Rule
			err := row.Scan(&r.ClientID, &r.Action, &r.Pattern, &r.GrantedAt, &r.GrantedBy)
			return r, err
		})
		return err
	})
	return list, err
}

// AssignRole gives a console user a role in the tenant. userID is the
// user's opaque id (never an e-mail address). Assigning an assigned role
// changes nothing; the change is audited like a grant.
func (s *Service) AssignRole(ctx context.Context, tenantID uuid.UUID, userID string, role Role, actor string) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	var added int64
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO console_roles (tenant_id, user_id, role, granted_at, granted_by)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
			tenantID, userID, string(role), now, actor)
		if err != nil {
			return err
		}
		added = tag.RowsAffected()
		err = audit.Append(ctx, tx, tenantID, audit.Event{
			Time: now, Type: audit.PolicyGranted, Actor: actor,
			Detail: map[string]any{"user": userID, "role": string(role), "added": added},
		})
		if err != nil || added == 0 {
			return err
		}
		return NotifyTx(ctx, tx, tenantID)
	})
	if err != nil {
		return err
	}
	if added > 0 {
		s.refresh(ctx, tenantID)
	}
	return nil
}

// RevokeRole takes a role from a console user; fault.NotFound when the user
// does not hold it.
func (s *Service) RevokeRole(ctx context.Context, tenantID uuid.UUID, userID string, role Role, actor string) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM console_roles WHERE tenant_id = $1 AND user_id = $2 AND role = $3`,
			tenantID, userID, string(role))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fault.New(fault.NotFound, "user %s does not hold role %s", userID, role)
		}
		err = audit.Append(ctx, tx, tenantID, audit.Event{
			Time: now, Type: audit.PolicyRevoked, Actor: actor,
			Detail: map[string]any{"user": userID, "role": string(role), "removed": 1},
		})
		if err != nil {
			return err
		}
		return NotifyTx(ctx, tx, tenantID)
	})
	if err != nil {
		return err
	}
	s.refresh(ctx, tenantID)
	return nil
}

// HasRole reports whether a console user holds role in the tenant, from
// memory.
func (s *Service) HasRole(tenantID uuid.UUID, userID string, role Role) bool {
	tp := (*s.state.Load())[tenantID]
	if tp == nil {
		return false
	}
	ok, err := tp.enforcer.HasRoleForUser(casbinUserPrefix+userID, casbinRolePrefix+string(role), tp.domain)
	return err == nil && ok
}

func flatten(scopes, audiences []string) (actions, objects []string) {
	for _, sc := range scopes {
		actions, objects = append(actions, string(ActScope)), append(objects, sc)
	}
	for _, a := range audiences {
		actions, objects = append(actions, string(ActAudience)), append(objects, a)
	}
	return actions, objects
}

func notGranted(clientID string, actions, objects, deleted []string) error {
	gone := make(map[string]bool, len(deleted))
	for _, d := range deleted {
		gone[d] = true
	}
	var missing []string
	for i := range actions {
		if !gone[actions[i]+" "+objects[i]] {
			missing = append(missing, actions[i]+" "+objects[i])
		}
	}
	return fault.New(fault.NotFound, "not granted to client %s (nothing revoked): %s", clientID, strings.Join(missing, ", "))
}

// clientKind returns the kind of a client of the transaction's tenant.
func clientKind(ctx context.Context, tx pgx.Tx, clientID string) (string, error) {
	if !validClientID(clientID) {
		return "", fault.New(fault.NotFound, "no such client")
	}
	var kind string
	err := tx.QueryRow(ctx, `SELECT kind FROM clients WHERE id = $1`, clientID).Scan(&kind)
	if fault.KindOf(pgstore.Interpret(err)) == fault.NotFound {
		return "", fault.New(fault.NotFound, "no such client")
	}
	return kind, err
}

// Refresh reloads a tenant's policy from the database now, for a change
// written in another package's transaction (a new client's default rules);
// the change notification does the same on every replica.
func (s *Service) Refresh(ctx context.Context, tenantID uuid.UUID) { s.refresh(ctx, tenantID) }

// refresh applies this replica's own change at once, so its next check
// sees it; the notification does the same on every replica (this one
// again, harmlessly), so a failure here is only logged.
func (s *Service) refresh(ctx context.Context, tenantID uuid.UUID) {
	if err := s.reloadTenant(ctx, tenantID); err != nil {
		s.log.Warn("policy: reload after change failed; the change notification will retry", "tenant", tenantID, "err", err)
	}
}

// onChange is the watcher's callback: reload what a notification names,
// retrying while the database is unavailable, until Close.
func (s *Service) onChange(payload string) {
	delay := backoffMin
	for {
		ctx, cancel := context.WithTimeout(s.ctx, reloadTimeout)
		var err error
		if id, perr := uuid.Parse(payload); perr == nil && payload != ReloadAll {
			err = s.reloadTenant(ctx, id)
		} else {
			err = s.reloadAll(ctx)
		}
		cancel()
		if err == nil || s.ctx.Err() != nil {
			return
		}
		s.log.Error("policy: reload failed; retrying", "payload", payload, "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, backoffMax)
	}
}

func (s *Service) reloadAll(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	all, err := loadAll(ctx, s.db)
	if err != nil {
		return err
	}
	next := make(map[uuid.UUID]*tenantPolicy, len(all))
	for id, lines := range all {
		if next[id], err = compile(id, lines); err != nil {
			return err
		}
	}
	s.state.Store(&next)
	s.log.Debug("policy: loaded every tenant", "tenants", len(next))
	return nil
}

func (s *Service) reloadTenant(ctx context.Context, tenantID uuid.UUID) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	lines, err := NewAdapter(s.db, tenantID).lines(ctx)
	if err != nil {
		return err
	}
	var tp *tenantPolicy
	if len(lines) > 0 {
		if tp, err = compile(tenantID, lines); err != nil {
			return err
		}
	}
	cur := *s.state.Load()
	next := make(map[uuid.UUID]*tenantPolicy, len(cur)+1)
	for id, p := range cur {
		next[id] = p
	}
	if tp == nil {
		delete(next, tenantID)
	} else {
		next[tenantID] = tp
	}
	s.state.Store(&next)
	s.log.Debug("policy: reloaded tenant", "tenant", tenantID, "rules", len(lines))
	return nil
}

// compile builds a tenant's enforcer from its Casbin lines.
func compile(tenantID uuid.UUID, lines [][]string) (*tenantPolicy, error) {
	e, err := newEnforcer(nil)
	if err != nil {
		return nil, err
	}
	if err := addLines(e.GetModel(), lines); err != nil {
		return nil, err
	}
	if err := e.BuildRoleLinks(); err != nil {
		return nil, fault.Wrap(err, fault.Internal, "policy role links")
	}
	tp := &tenantPolicy{domain: tenantID.String(), enforcer: e, clients: map[string]*clientGrants{}, memo: map[memoKey]memoEntry{}}
	for _, l := range lines {
		if l[0] != "p" {
			continue
		}
		id := strings.TrimPrefix(l[1], casbinClientPrefix)
		g := tp.clients[id]
		if g == nil {
			g = &clientGrants{}
			tp.clients[id] = g
		}
		switch act := Action(l[4]); act {
		case ActScope:
			g.scopes = append(g.scopes, l[3])
		case ActAudience:
			g.audiences = append(g.audiences, l[3])
		case ActMaxTaskTTL, ActMaxDepth:
			g.caps.set(act, l[3], ruleString(l[1], l[2], l[3], act))
		}
	}
	return tp, nil
}

// ruleString renders a rule as its Casbin policy line.
func ruleString(sub, dom, obj string, act Action) string {
	return fmt.Sprintf("p, %s, %s, %s, %s", sub, dom, obj, act)
}

// NewInMemory returns a service over fixed rules, without database or
// watcher, for benchmarks (here and
// in the packages that ask it); changes are not possible. rules maps a tenant to its Casbin lines.
func NewInMemory(rules map[uuid.UUID][][]string) (*Service, error) {
	s := &Service{log: slog.New(slog.DiscardHandler)}
	state := make(map[uuid.UUID]*tenantPolicy, len(rules))
	for id, lines := range rules {
		tp, err := compile(id, lines)
		if err != nil {
			return nil, err
		}
		state[id] = tp
	}
	s.state.Store(&state)
	return s, nil
}
