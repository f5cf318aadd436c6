package web_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/tenants/users"
)

type goquerySelection = goquery.Selection

// auditPageSizeForTest is the console's page of audit events.
const auditPageSizeForTest = 50

func usersEmail(s string) users.Email { return users.Email(s) }

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

func toEd25519(keys map[string][]byte) map[string]ed25519.PublicKey {
	out := map[string]ed25519.PublicKey{}
	for kid, k := range keys {
		out[kid] = ed25519.PublicKey(k)
	}
	return out
}
