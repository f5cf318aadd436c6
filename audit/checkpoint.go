package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants/keyring"
)

// Checkpoint is a signed statement of a chain head.
type Checkpoint struct {
	TenantID  uuid.UUID
	Seq       int64
	HeadHash  []byte
	SealedAt  time.Time
	KeyID     string
	PublicKey ed25519.PublicKey
	Signature []byte
}

// CheckpointMessage is what a checkpoint signs: the compact JSON array
// ["chit-checkpoint-v1", tenant, seq, hex(head), sealed_at] (same encoding
// rules as Canonical).
func CheckpointMessage(tenantID uuid.UUID, seq int64, head []byte, sealedAt time.Time) []byte {
	b, _ := marshal([]any{"chit-checkpoint-v1", tenantID.String(), seq, hex.EncodeToString(head),
		sealedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00")})
	return b
}

// Seal signs the tenant's chain head with its active key, unless the head
// is already sealed. It returns the new checkpoint, or nil when there was
// nothing new to seal.
func Seal(ctx context.Context, db *pgstore.DB, keys *keyring.Keyring, tenantID uuid.UUID, now time.Time) (*Checkpoint, error) {
	var cp *Checkpoint
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		var seq int64
		var head []byte
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1`).Scan(&seq, &head)
		if err == pgx.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		var sealed bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq = $1)`, seq).Scan(&sealed); err != nil || sealed {
			return err
		}
		signer, err := keys.SignerTx(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		sealedAt := now.UTC().Truncate(time.Microsecond)
		cp = &Checkpoint{TenantID: tenantID, Seq: seq, HeadHash: head, SealedAt: sealedAt, KeyID: signer.KeyID(),
			PublicKey: signer.Public().(ed25519.PublicKey)}
		cp.Signature = signer.SignMessage(CheckpointMessage(tenantID, seq, head, sealedAt))
		_, err = tx.Exec(ctx, `INSERT INTO audit_checkpoints (tenant_id, seq, head_hash, sealed_at, kid, public_key, signature)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			tenantID, seq, head, sealedAt, cp.KeyID, []byte(cp.PublicKey), cp.Signature)
		return err
	})
	return cp, err
}

// VerifyCheckpoints checks every checkpoint of the tenant: its signature by
// a key the verifier trusts (trusted, by kid), and
// that the link it names has the hash it states. It returns the first
// problem, or nil.
func VerifyCheckpoints(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID, trusted map[string]ed25519.PublicKey) (*Problem, error) {
	var p *Problem
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT cp.seq, cp.head_hash, cp.sealed_at, cp.kid, cp.signature, c.hash, c.event_id
			  FROM audit_checkpoints cp LEFT JOIN audit_chain c ON c.tenant_id = cp.tenant_id AND c.seq = cp.seq
			 ORDER BY cp.seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var head, sig, linkHash []byte
			var sealedAt time.Time
			var kid string
			var eventID *uuid.UUID
			if err := rows.Scan(&seq, &head, &sealedAt, &kid, &sig, &linkHash, &eventID); err != nil {
				return err
			}
			pub := trusted[kid]
			switch {
			case pub == nil:
				p = &Problem{Seq: seq, What: "checkpoint signed by an untrusted key " + kid}
			case !ed25519.Verify(pub, CheckpointMessage(tenantID, seq, head, sealedAt), sig):
				p = &Problem{Seq: seq, What: "bad checkpoint: its signature does not verify"}
			case eventID == nil:
				p = &Problem{Seq: seq, What: "bad checkpoint: the link it seals is missing"}
			case !bytes.Equal(linkHash, head):
				p = &Problem{Seq: seq, EventID: *eventID, What: "bad checkpoint: the sealed link's hash changed"}
			}
			if p != nil {
				return nil
			}
		}
		return rows.Err()
	})
	return p, err
}
