package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/pgstore"
)

// An export is JSON Lines, one record per line, in this order:
//
//	{"record":"header", "tenant", "from", "to", "format":"chit-audit-export-v1"}
//	{"record":"event", "seq", "prev_hash", "hash", "event": [the canonical array]}   (chain order)
//	{"record":"checkpoint", "seq", "head_hash", "sealed_at", "kid", "signature"}      (those covering the range)
//	{"record":"keys", "keys": [JWKs]}                                                   (hints: trust your own JWKS)
//
// Hashes are hex, signatures base64url. A range starting mid-chain is
// anchored by its first link's prev_hash; an event not yet chained is not
// exported. The CSV form carries the same records, one per row.

// ExportHeader opens an export.
type ExportHeader struct {
	Record string    `json:"record"`
	Format string    `json:"format"`
	Tenant uuid.UUID `json:"tenant"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// exportedEventID is the id inside an exported event's canonical array
// (its third member, see Canonical), or the nil UUID when it cannot be read.
func exportedEventID(canonical json.RawMessage) uuid.UUID {
	var fields []json.RawMessage
	var id string
	if json.Unmarshal(canonical, &fields) != nil || len(fields) < 3 || json.Unmarshal(fields[2], &id) != nil {
		return uuid.Nil
	}
	parsed, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil
	}
	return parsed
}

// ExportEvent is one chained event with its link.
type ExportEvent struct {
	Record   string          `json:"record"`
	Seq      int64           `json:"seq"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
	Event    json.RawMessage `json:"event"`
}

// ExportCheckpoint is a signed chain head.
type ExportCheckpoint struct {
	Record    string    `json:"record"`
	Seq       int64     `json:"seq"`
	HeadHash  string    `json:"head_hash"`
	SealedAt  time.Time `json:"sealed_at"`
	KeyID     string    `json:"kid"`
	Signature string    `json:"signature"`
}

// ExportKey is a checkpoint key as a JWK (OKP, Ed25519).
type ExportKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
}

// Export writes the tenant's chained events that occurred in [from, to),
// with the checkpoints that cover them and the keys that signed those, as
// JSON Lines (format "jsonl") or CSV. It streams: memory stays constant
// whatever the range.
func Export(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID, from, to time.Time, format string, w io.Writer) error {
	var emit func(v any) error
	var flush func() error
	switch format {
	case "", "jsonl":
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		emit, flush = enc.Encode, bw.Flush
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"record", "seq", "prev_hash", "hash", "data"}); err != nil {
			return err
		}
		emit = func(v any) error { return cw.Write(csvRow(v)) }
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		return errors.New("format must be jsonl or csv")
	}
	if err := emit(ExportHeader{Record: "header", Format: "chit-audit-export-v1", Tenant: tenantID, From: from.UTC(), To: to.UTC()}); err != nil {
		return err
	}
	var first, last int64
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT c.seq, c.prev_hash, c.hash, true, e.tenant_id, e.id, e.xid::text, e.occurred_at, e.type, e.outcome, e.actor,
			       coalesce(e.principal, ''), coalesce(e.client_id, ''), e.task_id, e.agent_id, e.token_id, e.denial_id,
			       e.revocation_id, e.detail
			  FROM audit_chain c JOIN audit_events e ON e.tenant_id = c.tenant_id AND e.id = c.event_id
			 WHERE e.occurred_at >= $1 AND e.occurred_at < $2
			 ORDER BY c.seq`, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var prev, hash []byte
			var present bool
			e, err := scanEventWith(rows.Scan, &seq, &prev, &hash, &present)
			if err != nil {
				return err
			}
			canon, err := Canonical(e.StoredEvent)
			if err != nil {
				return err
			}
			if err := emit(ExportEvent{Record: "event", Seq: seq, PrevHash: hex.EncodeToString(prev), Hash: hex.EncodeToString(hash), Event: canon}); err != nil {
				return err
			}
			if first == 0 {
				first = seq
			}
			last = seq
		}
		if err := rows.Err(); err != nil || first == 0 {
			return err
		}
		// The checkpoints within the range, and the first after it (which
		// seals the range's tail when the range ends mid-chain).
		cps, err := tx.Query(ctx, `
			(SELECT seq, head_hash, sealed_at, kid, signature, public_key FROM audit_checkpoints WHERE seq BETWEEN $1 AND $2)
			UNION ALL
			(SELECT seq, head_hash, sealed_at, kid, signature, public_key FROM audit_checkpoints WHERE seq > $2 ORDER BY seq LIMIT 1)
			ORDER BY seq`, first, last)
		if err != nil {
			return err
		}
		keys := map[string]ExportKey{}
		var checkpoints []ExportCheckpoint
		for cps.Next() {
			var cp ExportCheckpoint
			var head, sig, pub []byte
			if err := cps.Scan(&cp.Seq, &head, &cp.SealedAt, &cp.KeyID, &sig, &pub); err != nil {
				return err
			}
			cp.Record, cp.HeadHash, cp.Signature, cp.SealedAt = "checkpoint", hex.EncodeToString(head), base64.RawURLEncoding.EncodeToString(sig), cp.SealedAt.UTC()
			checkpoints = append(checkpoints, cp)
			keys[cp.KeyID] = ExportKey{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: cp.KeyID, Alg: "EdDSA"}
		}
		if err := cps.Err(); err != nil {
			return err
		}
		for _, cp := range checkpoints {
			if err := emit(cp); err != nil {
				return err
			}
		}
		list := make([]ExportKey, 0, len(keys))
		for _, k := range keys {
			list = append(list, k)
		}
		return emit(map[string]any{"record": "keys", "keys": list})
	})
	if err != nil {
		return err
	}
	return flush()
}

func csvRow(v any) []string {
	switch r := v.(type) {
	case ExportEvent:
		return []string{r.Record, strconv.FormatInt(r.Seq, 10), r.PrevHash, r.Hash, string(r.Event)}
	default:
		data, _ := json.Marshal(v)
		var rec struct {
			Record string `json:"record"`
		}
		_ = json.Unmarshal(data, &rec)
		return []string{rec.Record, "", "", "", string(data)}
	}
}

// OfflineReport is what verifying an export found.
type OfflineReport struct {
	Events      int   // events checked
	FirstSeq    int64 // the range's first link (anchored on its prev_hash)
	LastSeq     int64
	Checkpoints int // checkpoints verified
	Unsealed    int // events after the last checkpoint in the export
	Problem     *Problem
}

// VerifyExport checks a JSON Lines export offline: every event's hash from
// its canonical form and the link before it, the sequence without gaps, and
// every checkpoint's signature by a key of trusted (the auditor's own JWKS;
// keys inside the export are only hints and must match) and its head
// against the exported link.
func VerifyExport(r io.Reader, trusted map[string]ed25519.PublicKey) (*OfflineReport, error) {
	rep := &OfflineReport{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var tenant uuid.UUID
	var prevHash []byte
	hashes := map[int64][]byte{}
	fail := func(seq int64, what string) (*OfflineReport, error) {
		rep.Problem = &Problem{Seq: seq, What: what}
		return rep, nil
	}
	lastSealed := int64(0)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var kind struct {
			Record string `json:"record"`
		}
		if err := json.Unmarshal(line, &kind); err != nil {
			return nil, fmt.Errorf("line is not JSON: %w", err)
		}
		switch kind.Record {
		case "header":
			var h ExportHeader
			if err := json.Unmarshal(line, &h); err != nil {
				return nil, err
			}
			tenant = h.Tenant
		case "event":
			var ev ExportEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				return nil, err
			}
			fail := func(seq int64, what string) (*OfflineReport, error) {
				rep.Problem = &Problem{Seq: seq, EventID: exportedEventID(ev.Event), What: what}
				return rep, nil
			}
			prev, err1 := hex.DecodeString(ev.PrevHash)
			hash, err2 := hex.DecodeString(ev.Hash)
			if err1 != nil || err2 != nil {
				return fail(ev.Seq, "malformed hash")
			}
			switch {
			case rep.Events == 0 && ev.Seq == 1 && !bytes.Equal(prev, Genesis(tenant)):
				return fail(ev.Seq, "the first link does not start from the tenant's genesis")
			case rep.Events > 0 && ev.Seq != rep.LastSeq+1:
				return fail(rep.LastSeq+1, fmt.Sprintf("link missing (the sequence jumps to %d)", ev.Seq))
			case rep.Events > 0 && !bytes.Equal(prev, prevHash):
				return fail(ev.Seq, "link does not follow the previous one (reordered or inserted)")
			}
			h := sha256Of(prev, ev.Event)
			if !bytes.Equal(h, hash) {
				return fail(ev.Seq, "event content does not match its hash (edited)")
			}
			if rep.Events == 0 {
				rep.FirstSeq = ev.Seq
			}
			rep.Events++
			rep.LastSeq, prevHash, hashes[ev.Seq] = ev.Seq, hash, hash
		case "checkpoint":
			var cp ExportCheckpoint
			if err := json.Unmarshal(line, &cp); err != nil {
				return nil, err
			}
			head, err1 := hex.DecodeString(cp.HeadHash)
			sig, err2 := base64.RawURLEncoding.DecodeString(cp.Signature)
			if err1 != nil || err2 != nil {
				return fail(cp.Seq, "bad checkpoint: malformed")
			}
			pub := trusted[cp.KeyID]
			switch {
			case pub == nil:
				return fail(cp.Seq, "bad checkpoint: signed by a key not in the trusted JWKS ("+cp.KeyID+")")
			case !ed25519.Verify(pub, CheckpointMessage(tenant, cp.Seq, head, cp.SealedAt), sig):
				return fail(cp.Seq, "bad checkpoint: its signature does not verify")
			}
			if link, ok := hashes[cp.Seq]; ok {
				if !bytes.Equal(link, head) {
					return fail(cp.Seq, "bad checkpoint: the sealed link's hash differs")
				}
				lastSealed = max(lastSealed, cp.Seq) // seals every link up to it
			}
			rep.Checkpoints++
		case "keys":
			var ks struct {
				Keys []ExportKey `json:"keys"`
			}
			if err := json.Unmarshal(line, &ks); err != nil {
				return nil, err
			}
			for _, k := range ks.Keys {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				if t, ok := trusted[k.Kid]; ok && (err != nil || !bytes.Equal(t, x)) {
					return fail(0, "the export's key "+k.Kid+" differs from the trusted JWKS")
				}
			}
		default:
			return nil, fmt.Errorf("unknown record %q", kind.Record)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if rep.Events > 0 && lastSealed < rep.LastSeq {
		rep.Unsealed = int(rep.LastSeq - max(lastSealed, rep.FirstSeq-1))
	}
	return rep, nil
}

func sha256Of(prev []byte, canonical []byte) []byte {
	h := newHash()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(nil)
}

// CheckpointKeys returns every key that ever signed one of the tenant's
// checkpoints, as JWKs: never pruned, unlike the token JWKS.
func CheckpointKeys(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID) ([]ExportKey, error) {
	keys := []ExportKey{}
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT kid, public_key FROM audit_checkpoints ORDER BY kid`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kid string
			var pub []byte
			if err := rows.Scan(&kid, &pub); err != nil {
				return err
			}
			keys = append(keys, ExportKey{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: "EdDSA"})
		}
		return rows.Err()
	})
	return keys, err
}

// Checkpoints lists the tenant's checkpoints after seq, oldest first.
func Checkpoints(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID, after int64, limit int) ([]ExportCheckpoint, error) {
	list := []ExportCheckpoint{}
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, head_hash, sealed_at, kid, signature FROM audit_checkpoints
			WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var cp ExportCheckpoint
			var head, sig []byte
			if err := rows.Scan(&cp.Seq, &head, &cp.SealedAt, &cp.KeyID, &sig); err != nil {
				return err
			}
			cp.Record, cp.HeadHash, cp.Signature, cp.SealedAt = "checkpoint", hex.EncodeToString(head), base64.RawURLEncoding.EncodeToString(sig), cp.SealedAt.UTC()
			list = append(list, cp)
		}
		return rows.Err()
	})
	return list, err
}
