package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants/keyring"
)

type exportBundle struct {
	db      *pgstore.DB
	tenant  uuid.UUID
	ring    *keyring.Keyring
	trusted map[string]ed25519.PublicKey
	mid     time.Time // between the sealed part and the unsealed tail
}

// exportSetup: 6 events sealed by a checkpoint, then 3 more not yet sealed.
func exportSetup(t *testing.T) *exportBundle {
	t.Helper()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tenant, ring := keyedTenant(t, db)
	appendEvents(t, db, tenant, 6)
	chainAll(t, db, tenant)
	_, err := audit.Seal(ctx, db, ring, tenant, time.Now())
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	appendEvents(t, db, tenant, 3)
	chainAll(t, db, tenant)
	keys, err := ring.All(ctx, tenant)
	require.NoError(t, err)
	trusted := keyring.ByKID(keys)
	return &exportBundle{db: db, tenant: tenant, ring: ring, trusted: trusted, mid: mid}
}

func (b *exportBundle) export(t *testing.T, from, to time.Time) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, audit.Export(context.Background(), b.db, b.tenant, from, to, "jsonl", &buf))
	return buf.String()
}

func TestExportVerifiesOffline(t *testing.T) {
	t.Parallel()
	b := exportSetup(t)
	all := b.export(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	r, err := audit.VerifyExport(strings.NewReader(all), b.trusted)
	require.NoError(t, err)
	require.Nil(t, r.Problem)
	require.Equal(t, 9, r.Events)
	require.Equal(t, 1, r.Checkpoints)
	require.Equal(t, 3, r.Unsealed, "a tail not yet sealed passes and is counted")

	tail := b.export(t, b.mid, time.Now().Add(time.Hour))
	r, err = audit.VerifyExport(strings.NewReader(tail), b.trusted)
	require.NoError(t, err)
	require.Nil(t, r.Problem, "a range starting mid-chain verifies, anchored on its first link")
	require.EqualValues(t, 7, r.FirstSeq)
	require.Equal(t, 3, r.Events)
}

func TestExportTamperingIsDetectedOffline(t *testing.T) {
	t.Parallel()
	b := exportSetup(t)
	all := b.export(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	lines := strings.Split(strings.TrimSpace(all), "\n")
	without := func(i int) string {
		return strings.Join(append(append([]string{}, lines[:i]...), lines[i+1:]...), "\n")
	}
	swapped := append([]string{}, lines...)
	swapped[3], swapped[4] = swapped[4], swapped[3]
	for name, tc := range map[string]struct{ export, want string }{
		"edited":            {strings.Replace(all, `"agent:test"`, `"agent:other"`, 1), "edited"},
		"deleted":           {without(3), "link missing"},
		"reordered":         {strings.Join(swapped, "\n"), "link missing"},
		"forged checkpoint": {strings.Replace(all, `"head_hash":"`, `"head_hash":"00`, 1), "bad checkpoint"},
		"inserted":          {strings.Replace(all, lines[2], lines[2]+"\n"+strings.Replace(lines[2], `"agent:test"`, `"agent:x"`, 1), 1), "link missing"},
	} {
		r, err := audit.VerifyExport(strings.NewReader(tc.export), b.trusted)
		require.NoError(t, err, name)
		require.NotNil(t, r.Problem, name)
		require.Contains(t, r.Problem.What, tc.want, name)
		if name == "edited" {
			require.NotEqual(t, uuid.Nil, r.Problem.EventID, "the edited event is named")
			require.Contains(t, tc.export, `"`+r.Problem.EventID.String()+`"`)
		}
	}
	r, err := audit.VerifyExport(strings.NewReader(all), map[string]ed25519.PublicKey{})
	require.NoError(t, err)
	require.Contains(t, r.Problem.What, "not in the trusted JWKS", "only the auditor's own keys are trusted")
}
