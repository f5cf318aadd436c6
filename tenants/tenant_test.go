package tenants_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/tenants"
)

func TestParseTrustDomain(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"acme.example", "demo.chit.local", "a", "x-y_z.io", "123.example"} {
		td, err := tenants.ParseTrustDomain(ok)
		require.NoError(t, err, ok)
		require.Equal(t, ok, td.Name())
	}
	for _, bad := range []string{
		"", "Acme.example", "spiffe://acme.example", "acme.example/agents", "acme.example:8443",
		"acme example", "acmé.example", "acme.example\n", "https://acme.example",
	} {
		_, err := tenants.ParseTrustDomain(bad)
		require.Error(t, err, "%q must be refused", bad)
		require.Equal(t, fault.Invalid, fault.KindOf(err), bad)
	}
}

func TestParseSlug(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"demo", "acme-corp", "a", "t1", "0"} {
		_, err := tenants.ParseSlug(ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "-acme", "acme-", "Acme", "acme_corp", "acme.corp", "a/b", "..",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"} {
		_, err := tenants.ParseSlug(bad)
		require.Error(t, err, "%q must be refused", bad)
	}
}

func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, tenants.DefaultSettings().Validate())
	d := tenants.DefaultSettings()
	require.Equal(t, 5*time.Minute, d.TokenTTL)
	require.Equal(t, 10, d.MaxRenewals)
	require.Equal(t, 3, d.MaxDepth)
	require.Equal(t, 90*time.Second, d.Liveness)

	cases := map[string]tenants.SettingsChange{
		"token_ttl":    {TokenTTL: ptr(10 * time.Second)},
		"token_ttl ":   {TokenTTL: ptr(2 * time.Hour)},
		"token_ttl  ":  {TokenTTL: ptr(90*time.Second + time.Millisecond)},
		"max_renewals": {MaxRenewals: ptr(-1)},
		"max_depth":    {MaxDepth: ptr(0)},
		"max_depth ":   {MaxDepth: ptr(17)},
		"liveness":     {Liveness: ptr(time.Second)},
	}
	for field, change := range cases {
		err := change.Apply(d).Validate()
		require.Error(t, err, field)
		var fe *fault.Error
		require.ErrorAs(t, err, &fe)
		require.Equal(t, fault.Invalid, fe.Kind)
		require.Contains(t, field, fe.Field)
	}
}

func ptr[T any](v T) *T { return &v }
