package policy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/fault"
)

// Caps are an orchestrator's own limits. A zero value is no cap. They can
// only tighten the tenant's settings: the caller applies the smaller.
type Caps struct {
	MaxTaskTTL     time.Duration
	MaxTaskTTLRule string // the rule's Casbin line, for a denial trace
	MaxDepth       int
	MaxDepthRule   string
}

func (c *Caps) set(act Action, object, rule string) {
	n, err := strconv.Atoi(object)
	if err != nil || n <= 0 {
		return // the migration's check keeps these out; ignore rather than fail a load
	}
	switch act {
	case ActMaxTaskTTL:
		c.MaxTaskTTL, c.MaxTaskTTLRule = time.Duration(n)*time.Second, rule
	case ActMaxDepth:
		c.MaxDepth, c.MaxDepthRule = n, rule
	}
}

// Cap limits.
const (
	MinCapTTL = 10 * time.Second
	MaxCapTTL = 7 * 24 * time.Hour
	MaxCapDep = 64
)

// CheckClient decides whether clientID may use a tenant-wide capability
// (ActIntrospect or ActFeed), from memory.
func (s *Service) CheckClient(tenantID uuid.UUID, clientID string, act Action) Decision {
	d := Decision{Check: CheckPolicy}
	tp := (*s.state.Load())[tenantID]
	domain := tenantID.String()
	if tp != nil {
		if ok, rule := tp.enforce(s.log, clientID, AccessObject, act); ok {
			d.Allowed, d.Rule = true, rule
			return d
		}
	}
	d.Rule, d.Missing, d.MissingAction = RuleNone, []string{AccessObject}, act
	d.MissingRule = ruleString(casbinClientPrefix+clientID, domain, AccessObject, act)
	if tp != nil {
		other := ActFeed
		if act == ActFeed {
			other = ActIntrospect
		}
		if ok, rule := tp.enforce(s.log, clientID, AccessObject, other); ok {
			d.Closest = rule
		}
	}
	d.Reason = fmt.Sprintf("client %s holds no %s rule in this tenant", clientID, act)
	return d
}

// GrantAccess gives a resource-server client the introspect and/or feed
// rules; RevokeAccess takes them back (fault.NotFound when one is not
// held, and then nothing changes). Audited and notified like Grant.
func (s *Service) GrantAccess(ctx context.Context, tenantID uuid.UUID, clientID string, acts []Action, actor string) error {
	return s.changeAccess(ctx, tenantID, clientID, acts, actor, true)
}

// RevokeAccess takes introspect and/or feed rules back from a client.
func (s *Service) RevokeAccess(ctx context.Context, tenantID uuid.UUID, clientID string, acts []Action, actor string) error {
	return s.changeAccess(ctx, tenantID, clientID, acts, actor, false)
}

func (s *Service) changeAccess(ctx context.Context, tenantID uuid.UUID, clientID string, acts []Action, actor string, grant bool) error {
	if len(acts) == 0 {
		return fault.New(fault.Invalid, "give introspect, feed or both")
	}
	for _, a := range acts {
		if a != ActIntrospect && a != ActFeed {
			return fault.New(fault.Invalid, "%s is not a client access rule", a)
		}
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	names := make([]string, len(acts))
	for i, a := range acts {
		names[i] = string(a)
	}
	names = dedupe(names)
	now := s.clock.Now().Truncate(time.Microsecond)
	changed := false
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		kind, err := clientKind(ctx, tx, clientID)
		if err != nil {
			return err
		}
		if grant {
			if kind != "resource-server" {
				return fault.InvalidField("client", "%s is a %s client: introspect and feed are granted to resource servers", clientID, kind)
			}
			n, err := insertAccessTx(ctx, tx, tenantID, clientID, names, now, actor)
			if err != nil {
				return err
			}
			changed = n > 0
			if err := audit.Append(ctx, tx, tenantID, audit.Event{Time: now, Type: audit.PolicyGranted, Actor: actor,
				ClientID: clientID, Detail: map[string]any{"access": names, "added": n}}); err != nil || !changed {
				return err
			}
			return NotifyTx(ctx, tx, tenantID)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM policy_grants WHERE tenant_id = $1 AND client_id = $2
			AND action = ANY($3::text[]) AND object = $4`, tenantID, clientID, names, AccessObject)
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) != len(names) {
			return fault.New(fault.NotFound, "not granted to client %s (nothing revoked): %v", clientID, names)
		}
		changed = true
		if err := audit.Append(ctx, tx, tenantID, audit.Event{Time: now, Type: audit.PolicyRevoked, Actor: actor,
			ClientID: clientID, Detail: map[string]any{"access": names, "removed": len(names)}}); err != nil {
			return err
		}
		return NotifyTx(ctx, tx, tenantID)
	})
	if err != nil {
		return err
	}
	if changed {
		s.refresh(ctx, tenantID)
	}
	return nil
}

func insertAccessTx(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, clientID string, acts []string, now time.Time, actor string) (int64, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO policy_grants (tenant_id, client_id, action, object, granted_at, granted_by)
		SELECT $1, $2, a, $4, $5, $6 FROM unnest($3::text[]) AS a
		ON CONFLICT DO NOTHING`, tenantID, clientID, acts, AccessObject, now, actor)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// GrantDefaultsTx gives a client created in tx the rules of its kind: a
// resource server may introspect and read the feed. It writes the rules,
// their audit event and the change notification in tx, so the client and
// its rules commit together; call Refresh after the commit to apply them
// on this replica at once (every other replica follows the notification).
func GrantDefaultsTx(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, clientID, kind, actor string, now time.Time) error {
	if kind != "resource-server" {
		return nil
	}
	now = now.Truncate(time.Microsecond)
	names := []string{string(ActIntrospect), string(ActFeed)}
	n, err := insertAccessTx(ctx, tx, tenantID, clientID, names, now, actor)
	if err != nil {
		return err
	}
	if err := audit.Append(ctx, tx, tenantID, audit.Event{Time: now, Type: audit.PolicyGranted, Actor: actor,
		ClientID: clientID, Detail: map[string]any{"access": names, "added": n, "default": true}}); err != nil {
		return err
	}
	return NotifyTx(ctx, tx, tenantID)
}

// SetCaps sets an orchestrator's caps: maxTTL (0: leave as is) and
// maxDepth (0: leave as is). A cap replaces the client's previous one.
func (s *Service) SetCaps(ctx context.Context, tenantID uuid.UUID, clientID string, maxTTL time.Duration, maxDepth int, actor string) error {
	if maxTTL == 0 && maxDepth == 0 {
		return fault.New(fault.Invalid, "give --max-task-ttl, --max-depth or both")
	}
	if maxTTL != 0 && (maxTTL < MinCapTTL || maxTTL > MaxCapTTL || maxTTL%time.Second != 0) {
		return fault.InvalidField("max_task_ttl", "whole seconds between %s and %s", MinCapTTL, MaxCapTTL)
	}
	if maxDepth < 0 || maxDepth > MaxCapDep {
		return fault.InvalidField("max_depth", "between 1 and %d", MaxCapDep)
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	var acts, objs []string
	detail := map[string]any{}
	if maxTTL != 0 {
		secs := strconv.Itoa(int(maxTTL / time.Second))
		acts, objs = append(acts, string(ActMaxTaskTTL)), append(objs, secs)
		detail["max_task_ttl_seconds"] = int(maxTTL / time.Second)
	}
	if maxDepth != 0 {
		acts, objs = append(acts, string(ActMaxDepth)), append(objs, strconv.Itoa(maxDepth))
		detail["max_depth"] = maxDepth
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		kind, err := clientKind(ctx, tx, clientID)
		if err != nil {
			return err
		}
		if kind != "orchestrator" {
			return fault.InvalidField("client", "%s is a %s client: caps apply to orchestrators", clientID, kind)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM policy_grants WHERE tenant_id = $1 AND client_id = $2 AND action = ANY($3::text[])`,
			tenantID, clientID, acts); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO policy_grants (tenant_id, client_id, action, object, granted_at, granted_by)
			SELECT $1, $2, t.action, t.object, $5, $6 FROM unnest($3::text[], $4::text[]) AS t(action, object)`,
			tenantID, clientID, acts, objs, now, actor); err != nil {
			return err
		}
		if err := audit.Append(ctx, tx, tenantID, audit.Event{Time: now, Type: audit.PolicyGranted, Actor: actor,
			ClientID: clientID, Detail: detail}); err != nil {
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

// ClearCaps removes an orchestrator's caps (fault.NotFound when a named cap
// is not set; nothing changes then).
func (s *Service) ClearCaps(ctx context.Context, tenantID uuid.UUID, clientID string, ttl, depth bool, actor string) error {
	var acts []string
	if ttl {
		acts = append(acts, string(ActMaxTaskTTL))
	}
	if depth {
		acts = append(acts, string(ActMaxDepth))
	}
	if len(acts) == 0 {
		return fault.New(fault.Invalid, "give --max-task-ttl, --max-depth or both")
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	err := s.db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		if _, err := clientKind(ctx, tx, clientID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM policy_grants WHERE tenant_id = $1 AND client_id = $2 AND action = ANY($3::text[])`,
			tenantID, clientID, acts)
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) != len(acts) {
			return fault.New(fault.NotFound, "not set for client %s (nothing revoked): %v", clientID, acts)
		}
		if err := audit.Append(ctx, tx, tenantID, audit.Event{Time: now, Type: audit.PolicyRevoked, Actor: actor,
			ClientID: clientID, Detail: map[string]any{"caps": acts}}); err != nil {
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
