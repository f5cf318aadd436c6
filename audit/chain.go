package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chitdev/chit/internal/pgstore"
)

// The chain. Link n holds hash_n = SHA-256(hash_{n-1} || canonical(event_n)),
// where hash_0 = SHA-256("chit audit genesis\x00" || tenant id) and the
// canonical encoding of an event is the compact JSON array (Go
// encoding/json, HTML escaping off) of, in this order:
//
//	"chit-audit-v1", tenant_id, id, occurred_at, type, outcome, actor,
//	principal, client_id, task_id, agent_id, token_id, denial_id,
//	revocation_id, detail
//
// Absent values are "" (ids in canonical UUID text); occurred_at is UTC
// RFC 3339 with exactly six fractional digits (PostgreSQL's precision);
// detail is a JSON object with its keys sorted and numbers kept as stored.

// Genesis is hash_0 of a tenant's chain.
func Genesis(tenantID uuid.UUID) []byte {
	sum := sha256.Sum256([]byte("chit audit genesis\x00" + tenantID.String()))
	return sum[:]
}

// StoredEvent is an event as read back, with everything the chain covers.
type StoredEvent struct {
	TenantID uuid.UUID
	ID       uuid.UUID
	Event
}

// Canonical is the byte string the chain hashes for e.
func Canonical(e StoredEvent) ([]byte, error) {
	detail, err := canonicalJSON(e.Detail)
	if err != nil {
		return nil, err
	}
	fields := []any{"chit-audit-v1", e.TenantID.String(), e.ID.String(),
		e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), string(e.Type), string(e.Outcome), e.Actor,
		e.Principal, e.ClientID, idText(e.TaskID), idText(e.AgentID), idText(e.TokenID), idText(e.DenialID),
		idText(e.RevocationID), json.RawMessage(detail)}
	return marshal(fields)
}

func newHash() hash.Hash { return sha256.New() }

// Link computes the hash following prev for e.
func Link(prev []byte, e StoredEvent) ([]byte, error) {
	c, err := Canonical(e)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(c)
	return h.Sum(nil), nil
}

func canonicalJSON(detail map[string]any) ([]byte, error) {
	if detail == nil {
		detail = map[string]any{}
	}
	return marshal(detail) // encoding/json sorts map keys
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func idText(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// chainRescanWindow is how many links back each run looks for late events.
const chainRescanWindow = 1000

// chainLockKey, with the tenant, names the advisory lock that makes one
// chainer per tenant at a time, whichever replica runs it.
const chainLockKey = 0x63686169 // "chai"

// ChainPending links, in one transaction, up to limit events of the tenant
// that no running transaction can still precede. It returns how many it
// linked; run it again while that equals limit.
func ChainPending(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID, now time.Time, limit int) (int, error) {
	linked := 0
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, chainLockKey, tenantID.String()); err != nil {
			return err
		}
		// The scan starts a window of links back from the head, so an event
		// whose transaction sorted before the head's but was linked late is
		// still found; linked events are skipped by the anti-join below.
		seq, prev, fromXID := int64(0), Genesis(tenantID), "0"
		err := tx.QueryRow(ctx, `
			SELECT h.seq, h.hash, coalesce((SELECT w.event_xid::text FROM audit_chain w WHERE w.seq = greatest(h.seq - $1, 1)), '0')
			  FROM audit_chain h ORDER BY h.seq DESC LIMIT 1`, chainRescanWindow).Scan(&seq, &prev, &fromXID)
		if err != nil && err != pgx.ErrNoRows {
			return err
		}
		// From the head's transaction on (index range), skipping what is
		// linked already: a link is never written twice, whatever the order
		// two chainers' snapshots saw.
		rows, err := tx.Query(ctx, selectEvents+` e
			 WHERE e.xid >= $1::xid8 AND e.xid < pg_snapshot_xmin(pg_current_snapshot())
			   AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.tenant_id = e.tenant_id AND c.event_id = e.id)
			 ORDER BY e.xid, e.id LIMIT $2`, fromXID, limit)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		seqs := make([]int64, len(events))
		ids := make([]uuid.UUID, len(events))
		xids := make([]string, len(events))
		prevs := make([][]byte, len(events))
		hashes := make([][]byte, len(events))
		for i, e := range events {
			h, err := Link(prev, e.StoredEvent)
			if err != nil {
				return err
			}
			seq++
			seqs[i], ids[i], xids[i], prevs[i], hashes[i] = seq, e.ID, e.xid, prev, h
			prev = h
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO audit_chain (tenant_id, seq, event_id, event_xid, prev_hash, hash, chained_at)
			SELECT $1, s, e, x::xid8, p, h, $7
			  FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::bytea[], $6::bytea[]) AS u(s, e, x, p, h)`,
			tenantID, seqs, ids, xids, prevs, hashes, now)
		linked = len(events)
		return err
	})
	return linked, err
}

type chainedEvent struct {
	StoredEvent
	xid string
}

const selectEvents = `
	SELECT tenant_id, id, xid::text, occurred_at, type, outcome, actor, coalesce(principal, ''), coalesce(client_id, ''),
	       task_id, agent_id, token_id, denial_id, revocation_id, detail
	  FROM audit_events`

func scanEvent(row pgx.CollectableRow) (chainedEvent, error) {
	return scanEventWith(row.Scan)
}

// scanEventWith scans the columns of selectEvents, after any leading
// destinations in pre.
func scanEventWith(scan func(dest ...any) error, pre ...any) (chainedEvent, error) {
	var e chainedEvent
	var typ, outcome string
	var task, agent, token, denial, revocation pgtype.UUID
	var detail []byte
	dest := append(pre, &e.TenantID, &e.ID, &e.xid, &e.Time, &typ, &outcome, &e.Actor, &e.Principal, &e.ClientID,
		&task, &agent, &token, &denial, &revocation, &detail)
	if err := scan(dest...); err != nil {
		return e, err
	}
	e.Type, e.Outcome = Type(typ), Outcome(outcome)
	e.TaskID, e.AgentID, e.TokenID = uuid.UUID(task.Bytes), uuid.UUID(agent.Bytes), uuid.UUID(token.Bytes)
	e.DenialID, e.RevocationID = uuid.UUID(denial.Bytes), uuid.UUID(revocation.Bytes)
	dec := json.NewDecoder(bytes.NewReader(detail))
	dec.UseNumber() // numbers keep their stored text
	if err := dec.Decode(&e.Detail); err != nil {
		return e, fmt.Errorf("event %s detail: %w", e.ID, err)
	}
	return e, nil
}

// Problem is the first thing wrong with a chain.
type Problem struct {
	Seq     int64
	EventID uuid.UUID
	What    string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit chain broken at link %d (event %s): %s", p.Seq, p.EventID, p.What)
}

// VerifyReport says what a verification covered.
type VerifyReport struct {
	Links     int64
	Unchained int // events not yet linked (a tail newer than the chainer)
	Problem   *Problem
}

// Verify walks the tenant's whole chain: every link must hash its event
// with the link before it, and every event older than the newest link must
// be linked exactly once.
func Verify(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID) (*VerifyReport, error) {
	r := &VerifyReport{}
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT c.seq, c.event_id, c.prev_hash, c.hash, e.id IS NOT NULL,
			       c.tenant_id, c.event_id, coalesce(e.xid::text, '0'), coalesce(e.occurred_at, 'epoch'),
			       coalesce(e.type, ''), coalesce(e.outcome, ''), coalesce(e.actor, ''), coalesce(e.principal, ''),
			       coalesce(e.client_id, ''), e.task_id, e.agent_id, e.token_id, e.denial_id, e.revocation_id,
			       coalesce(e.detail, '{}')
			  FROM audit_chain c LEFT JOIN audit_events e ON e.tenant_id = c.tenant_id AND e.id = c.event_id
			 ORDER BY c.seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		prev, want := Genesis(tenantID), int64(1)
		for rows.Next() {
			var seq int64
			var eventID uuid.UUID
			var linkPrev, linkHash []byte
			var present bool
			e, err := scanEventWith(rows.Scan, &seq, &eventID, &linkPrev, &linkHash, &present)
			if err != nil {
				return err
			}
			switch {
			case seq != want:
				r.Problem = &Problem{Seq: want, EventID: eventID, What: fmt.Sprintf("link missing (the sequence jumps to %d)", seq)}
			case !present:
				r.Problem = &Problem{Seq: seq, EventID: eventID, What: "event missing (deleted)"}
			case !bytes.Equal(linkPrev, prev):
				r.Problem = &Problem{Seq: seq, EventID: eventID, What: "link does not follow the previous one (reordered or inserted)"}
			}
			if r.Problem != nil {
				return nil
			}
			h, err := Link(prev, e.StoredEvent)
			if err != nil {
				return err
			}
			if !bytes.Equal(h, linkHash) {
				r.Problem = &Problem{Seq: seq, EventID: eventID, What: "event content does not match its hash (edited)"}
				return nil
			}
			prev, want, r.Links = h, want+1, seq
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM audit_events e
			WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.tenant_id = e.tenant_id AND c.event_id = e.id)`).Scan(&r.Unchained)
	})
	return r, err
}
