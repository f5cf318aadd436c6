package audit

import (
	"context"
	"encoding/base64"
	"encoding/hex"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
)

// LastCheckpoint is the tenant's newest checkpoint, or nil before the first.
func LastCheckpoint(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID) (*ExportCheckpoint, error) {
	var cp ExportCheckpoint
	var head, sig []byte
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT seq, head_hash, sealed_at, kid, signature FROM audit_checkpoints
			ORDER BY seq DESC LIMIT 1`).Scan(&cp.Seq, &head, &cp.SealedAt, &cp.KeyID, &sig)
	})
	if fault.KindOf(err) == fault.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cp.Record, cp.HeadHash, cp.Signature, cp.SealedAt = "checkpoint", hex.EncodeToString(head), base64.RawURLEncoding.EncodeToString(sig), cp.SealedAt.UTC()
	return &cp, nil
}
