package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
)

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = b.run(t, "tenant", "create", "acme", "--trust-domain", "acme.example")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = b.run(t, "key", "rotate", "--tenant", "acme")
	require.Equal(t, 0, code, stderr)

	db, err := pgstore.Open(ctx, b.env["DATABASE_URL"], pgstore.Options{})
	require.NoError(t, err)
	defer db.Close()
	kek, err := keyring.LoadKEK(b.env["CHIT_KEK_FILE"])
	require.NoError(t, err)
	keys := keyring.New(db, kek, clock.System)
	acme, err := tenants.NewService(db, keys, clock.System).BySlug(ctx, "acme")
	require.NoError(t, err)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := audit.ChainPending(ctx, db, acme.ID, time.Now(), 100)
		require.NoError(t, err)
		r, err := audit.Verify(ctx, db, acme.ID)
		require.NoError(t, err)
		if r.Unchained == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline))
		time.Sleep(20 * time.Millisecond)
	}
	_, err = audit.Seal(ctx, db, keys, acme.ID, time.Now())
	require.NoError(t, err)

	code, out, stderr := b.run(t, "audit", "verify", "--tenant", "acme", "--json")
	require.Equal(t, 0, code, stderr)
	var ok struct {
		OK    bool  `json:"ok"`
		Links int64 `json:"links"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &ok))
	require.True(t, ok.OK)
	require.EqualValues(t, 2, ok.Links, "tenant.created and key.rotated")

	// Export, and verify offline against the keys the auditor trusts.
	dir := t.TempDir()
	exportFile, jwksFile := filepath.Join(dir, "export.jsonl"), filepath.Join(dir, "jwks.json")
	code, _, stderr = b.run(t, "audit", "export", "--tenant", "acme", "--out", exportFile)
	require.Equal(t, 0, code, stderr)
	pubs, err := keys.All(ctx, acme.ID)
	require.NoError(t, err)
	jwks, err := json.Marshal(keyring.JWKS(pubs))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jwksFile, jwks, 0o600))
	code, out, stderr = b.run(t, "audit", "verify", "--file", exportFile, "--jwks", jwksFile)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "verifies: 2 events")
	data, err := os.ReadFile(exportFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exportFile, []byte(strings.Replace(string(data), "operator:cli", "operator:xli", 1)), 0o600))
	code, out, _ = b.run(t, "audit", "verify", "--file", exportFile, "--jwks", jwksFile)
	require.Equal(t, 1, code, "an edited export fails")
	require.Contains(t, out, "edited")

	su, err := pgx.Connect(ctx, b.env["DATABASE_URL"])
	require.NoError(t, err)
	defer su.Close(ctx)
	_, err = su.Exec(ctx, `SET session_replication_role = replica`)
	require.NoError(t, err)
	_, err = su.Exec(ctx, `UPDATE audit_events SET actor = 'operator:someone-else' WHERE type = 'key.rotated'`)
	require.NoError(t, err)
	code, out, _ = b.run(t, "audit", "verify", "--tenant", "acme")
	require.Equal(t, 1, code, "a tampered trail fails")
	require.Contains(t, out, "link 2")
	require.Contains(t, out, "edited")
}
