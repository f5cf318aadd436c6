package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
)

// runIn is run with stdin.
func (b *testBundle) runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return b.env[k] },
	})
	return code, stdout.String(), stderr.String()
}

// login signs in with the user service, as the console does.
func (b *testBundle) login(t *testing.T, email, password string) error {
	t.Helper()
	ctx := context.Background()
	db, err := pgstore.Open(ctx, b.env["DATABASE_URL"], pgstore.Options{MaxConns: 2})
	require.NoError(t, err)
	defer db.Close()
	gov, err := policy.New(ctx, db, clock.System, nil)
	require.NoError(t, err)
	defer gov.Close()
	svc, err := users.New(users.Config{DB: db, Roles: gov})
	require.NoError(t, err)
	_, err = svc.Login(ctx, email, password)
	return err
}

func TestUserCreateReadsThePasswordNeverFromAnArgument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	for _, slug := range []string{"acme", "bravo"} {
		code, _, stderr = b.run(t, "tenant", "create", slug, "--trust-domain", slug+".example")
		require.Equal(t, 0, code, stderr)
	}

	// From stdin.
	code, out, stderr := b.runIn(t, "a long enough passphrase\n", "user", "create", "--json", "--tenant", "acme",
		"--email", "ana@acme.example", "--role", "admin")
	require.Equal(t, 0, code, stderr)
	var created struct {
		UserID  string `json:"user_id"`
		Role    string `json:"role"`
		Created bool   `json:"created"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	require.True(t, created.Created)
	require.Equal(t, "admin", created.Role)
	require.NotContains(t, out+stderr, "passphrase", "the password is never echoed")
	require.NoError(t, b.login(t, "ana@acme.example", "a long enough passphrase"))

	// From a file.
	file := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(file, []byte("another good passphrase\n"), 0o600))
	code, _, stderr = b.run(t, "user", "create", "--tenant", "acme", "--email", "vic@acme.example", "--role", "viewer", "--password-file", file)
	require.Equal(t, 0, code, stderr)
	require.NoError(t, b.login(t, "vic@acme.example", "another good passphrase"))

	// The same person in a second tenant keeps their password; none is read.
	code, out, stderr = b.runIn(t, "", "user", "create", "--tenant", "bravo", "--email", "ANA@acme.example", "--role", "auditor")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "existing console user")
	require.NoError(t, b.login(t, "ana@acme.example", "a long enough passphrase"))

	// Refusals change nothing.
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"short\n", []string{"--email", "new@acme.example", "--role", "admin"}},
		{"", []string{"--email", "new@acme.example", "--role", "admin"}},
		{"a long enough passphrase\n", []string{"--email", "new@acme.example", "--role", "root"}},
		{"a long enough passphrase\n", []string{"--email", "not an address", "--role", "admin"}},
		{"", []string{"--email", "new@acme.example", "--role", "admin", "--password", "a long enough passphrase"}},
	} {
		code, _, stderr := b.runIn(t, tc.stdin, append([]string{"user", "create", "--tenant", "acme"}, tc.args...)...)
		require.NotEqual(t, 0, code, "%v", tc.args)
		require.NotEmpty(t, stderr)
	}
	require.Error(t, b.login(t, "new@acme.example", "a long enough passphrase"))
}

func TestMakeRunCreatesTheDemoAdminOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	base, out := b.serve(t, "--demo")
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out.String())
	require.Len(t, m, 2, out.String())
	require.Contains(t, out.String(), base+"/console/")
	require.NoError(t, b.login(t, string(demoAdmin), m[1]))

	// A second start leaves the admin alone and prints no password.
	_, again := b.serve(t, "--demo")
	require.NotContains(t, again.String(), "password:")
	require.NotContains(t, again.String(), m[1])
	require.Contains(t, again.String(), string(demoAdmin))
}

func TestUserListDisableAndPassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = b.run(t, "tenant", "create", "acme", "--trust-domain", "acme.example")
	require.Equal(t, 0, code, stderr)
	for _, u := range []struct{ email, role string }{{"ana@acme.example", "admin"}, {"vic@acme.example", "viewer"}} {
		code, _, stderr = b.runIn(t, "a long enough passphrase\n", "user", "create", "--tenant", "acme", "--email", u.email, "--role", u.role)
		require.Equal(t, 0, code, stderr)
	}

	code, out, stderr := b.run(t, "user", "list", "--tenant", "acme", "--json")
	require.Equal(t, 0, code, stderr)
	var list []struct {
		Email    string `json:"email"`
		Role     string `json:"role"`
		Disabled bool   `json:"disabled"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 2)
	require.Equal(t, "ana@acme.example", list[0].Email)
	require.Equal(t, "admin", list[0].Role)
	require.Equal(t, "viewer", list[1].Role)

	// A new password: the old one stops working, the new one works.
	code, _, stderr = b.runIn(t, "the replacement passphrase\n", "user", "password", "--email", "vic@acme.example")
	require.Equal(t, 0, code, stderr)
	require.Error(t, b.login(t, "vic@acme.example", "a long enough passphrase"))
	require.NoError(t, b.login(t, "vic@acme.example", "the replacement passphrase"))
	code, _, _ = b.runIn(t, "short\n", "user", "password", "--email", "vic@acme.example")
	require.Equal(t, 2, code, "a too short password is refused")

	// Disabled: no sign-in, and the listing says so.
	code, _, stderr = b.run(t, "user", "disable", "--email", "vic@acme.example")
	require.Equal(t, 0, code, stderr)
	require.Error(t, b.login(t, "vic@acme.example", "the replacement passphrase"))
	code, out, _ = b.run(t, "user", "list", "--tenant", "acme")
	require.Equal(t, 0, code)
	require.Contains(t, out, "vic@acme.example  (disabled)")
	code, _, _ = b.run(t, "user", "disable", "--email", "nobody@acme.example")
	require.NotEqual(t, 0, code)
}
