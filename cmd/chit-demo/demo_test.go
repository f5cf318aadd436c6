package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants"
)

// setUp does what scripts/demo does with the chit CLI: the demo tenant, a
// key pair per client written by keygen, the client registered with its
// public JWK, the orchestrators' grants, and the client ids beside the keys.
func setUp(t *testing.T, env *chittest.Env) (*tenants.Tenant, string) {
	t.Helper()
	ctx := context.Background()
	ten, err := env.Tenants.Create(ctx, tenants.CreateParams{Slug: "demo", TrustDomain: "demo.chit.local"})
	require.NoError(t, err)
	dir := t.TempDir()
	var out bytes.Buffer
	require.Equal(t, 0, realMain([]string{"clients"}, &out, os.Stderr))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, len(orchestrators)+len(resourceServers))
	for _, line := range lines {
		f := strings.Split(line, "\t")
		require.Len(t, f, 4, line)
		name, kind, scopes, audiences := f[0], f[1], f[2], f[3]
		require.Equal(t, 0, realMain([]string{"keygen", "--private", privateKeyPath(dir, name), "--public", publicKeyPath(dir, name)},
			os.Stdout, os.Stderr))
		registerClient(t, env, ten, dir, name, kind)
		if scopes != "-" {
			require.NoError(t, env.Policy.Grant(ctx, ten.ID, readID(t, dir, name), strings.Fields(scopes), strings.Fields(audiences), "test"))
		}
	}
	return ten, dir
}

// registerClient registers the public key keygen wrote, as `chit client create` does.
func registerClient(t *testing.T, env *chittest.Env, ten *tenants.Tenant, dir, name, kind string) {
	t.Helper()
	data, err := os.ReadFile(publicKeyPath(dir, name))
	require.NoError(t, err)
	pub, err := oauth.ParsePublicJWK(data)
	require.NoError(t, err)
	k, err := oauth.ParseClientKind(kind)
	require.NoError(t, err)
	c, err := env.OAuth.CreateClient(context.Background(), ten, k, name, pub, "cli")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(clientIDPath(dir, name), []byte(c.ID+"\n"), 0o600))
}

func readID(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(clientIDPath(dir, name))
	require.NoError(t, err)
	return strings.TrimSpace(string(data))
}

func TestWorkloadLeavesAConsoleWorthOfHistory(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	ten, dir := setUp(t, env)

	var out, log bytes.Buffer
	cfg := config{BaseURL: env.URL, Tenant: "demo", KeysDir: dir, Duration: 1500 * time.Millisecond, Rate: 20,
		Step: 10 * time.Millisecond, Out: &out, Log: &log}
	ctx := context.Background()
	d, err := newDriver(ctx, cfg)
	require.NoError(t, err)
	c, err := d.run(ctx, ctx)
	require.NoError(t, err, log.String())
	require.Zero(t, c.Failed, log.String())
	require.GreaterOrEqual(t, c.Tasks, int64(len(plans)), "every plan was played at least once")

	// One line per task, identifiers only: no JWT (every token and assertion starts eyJ).
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, int(c.Tasks))
	require.NotContains(t, out.String(), "eyJ")
	require.NotContains(t, log.String(), "eyJ")
	require.Contains(t, out.String(), "outcome=completed\n")
	require.Contains(t, out.String(), "outcome=silent")

	var completed, open, subAgents, deepest int
	checks := map[string]int{}
	levels := map[string]int{}
	var reasons []string
	require.NoError(t, env.DB.InTenantTx(ctx, ten.ID, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE completed_at IS NOT NULL), count(*) FILTER (WHERE completed_at IS NULL)
			FROM tasks`).Scan(&completed, &open); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE depth >= 2), coalesce(max(depth), 0) FROM agents`).
			Scan(&subAgents, &deepest); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT check_name, count(*) FROM denials GROUP BY check_name`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var check string
			var n int
			if err := rows.Scan(&check, &n); err != nil {
				return err
			}
			checks[check] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT level, reason FROM revocations WHERE revoked_by NOT LIKE 'system%'`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var level, reason string
			if err := rows.Scan(&level, &reason); err != nil {
				return err
			}
			levels[level]++
			if level == "agent" || level == "chain" {
				reasons = append(reasons, reason)
			}
		}
		return rows.Err()
	}))

	require.Positive(t, completed, "tasks completed")
	require.Greater(t, completed, open, "most tasks complete")
	require.Positive(t, open, "a silent task is left open for the liveness sweep")
	require.Positive(t, subAgents, "agents delegated to sub-agents")
	require.Equal(t, 3, deepest, "a sub-agent delegated once more")
	for _, check := range []string{"policy", "scope", "replay", "revoked"} {
		require.Positive(t, checks[check], "a %s refusal was recorded; got %v", check, checks)
	}
	require.Positive(t, levels["agent"], "an agent was revoked; got %v", levels)
	require.Positive(t, levels["chain"], "a chain was revoked; got %v", levels)
	for _, reason := range reasons {
		require.Contains(t, revocationReasons, reason)
	}
}

func TestSilentAgentsAreLeftForTheLivenessSweep(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	ten, dir := setUp(t, env)
	var out bytes.Buffer
	ctx := context.Background()
	d, err := newDriver(ctx, config{BaseURL: env.URL, Tenant: "demo", KeysDir: dir, Rate: 1, Step: time.Millisecond,
		Out: &out, Log: os.Stderr})
	require.NoError(t, err)
	silent := -1
	for i, p := range plans {
		if p.end == wentSilent {
			silent = i
		}
	}
	require.NotEqual(t, -1, silent)
	d.playTask(ctx, silent)
	require.Contains(t, out.String(), "outcome=silent")

	// The task is open and none of its agents is revoked: only their silence will end them.
	fields := strings.Fields(out.String())
	var taskID uuid.UUID
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, "task="); ok {
			taskID = uuid.MustParse(v)
		}
	}
	var agents, revoked int
	var done bool
	require.NoError(t, env.DB.InTenantTx(ctx, ten.ID, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT completed_at IS NOT NULL FROM tasks WHERE id = $1`, taskID).Scan(&done); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*), count(revoked_at) FROM agents WHERE task_id = $1`, taskID).Scan(&agents, &revoked)
	}))
	require.False(t, done)
	require.Equal(t, 1+plans[silent].helpers, agents)
	require.Zero(t, revoked)
}

func TestCheckTellsAStaleSetUpFromAWorkingOne(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	_, dir := setUp(t, env)
	ctx := context.Background()
	a, err := dial(ctx, env.URL, "demo")
	require.NoError(t, err)
	require.NoError(t, checkClient(ctx, a, dir, "support-triage"))

	// A key replaced after registration (or a database reset under the same files) is not accepted.
	require.NoError(t, writeKeyPair(privateKeyPath(dir, "tickets-api"), publicKeyPath(dir, "tickets-api")))
	require.ErrorIs(t, checkClient(ctx, a, dir, "tickets-api"), errUnknownClient)
	// Files never written: registration needed too.
	require.ErrorIs(t, checkClient(ctx, a, t.TempDir(), "support-triage"), errUnknownClient)

	_, err = newDriver(ctx, config{BaseURL: env.URL, Tenant: "demo", KeysDir: dir, Rate: 1, Step: time.Millisecond})
	require.ErrorContains(t, err, "does not accept client tickets-api")
	require.ErrorContains(t, err, "scripts/demo")

	// The exit status scripts/demo branches on.
	code := realMain([]string{"check", "--base-url", env.URL, "--keys", dir, "--client", "tickets-api"}, os.Stdout, &bytes.Buffer{})
	require.Equal(t, exitUnknownClient, code)
	code = realMain([]string{"check", "--base-url", env.URL, "--keys", dir, "--client", "docs-api"}, os.Stdout, &bytes.Buffer{})
	require.Equal(t, 0, code)
}

func TestDialExplainsWhatIsMissing(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	_, err := dial(context.Background(), env.URL, "demo")
	require.ErrorContains(t, err, `has no tenant "demo"`)

	// Nothing listens on a port just released.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	_, err = dial(context.Background(), "http://"+ln.Addr().String(), "demo")
	require.ErrorIs(t, err, errServerUnreachable)
	require.ErrorContains(t, err, "make run")
}

func TestKeygenWritesAPrivateKeyOnlyItsOwnerReads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.jwk"), filepath.Join(dir, "k.pub.jwk")
	require.NoError(t, writeKeyPair(priv, pub))
	info, err := os.Stat(priv)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	key, err := readPrivateKey(priv)
	require.NoError(t, err)
	data, err := os.ReadFile(pub)
	require.NoError(t, err)
	got, err := oauth.ParsePublicJWK(data)
	require.NoError(t, err, "chit client create --jwk takes the public file")
	require.Equal(t, key.Public(), got)

	require.NoError(t, os.Chmod(priv, 0o644))
	_, err = readPrivateKey(priv)
	require.ErrorContains(t, err, "readable by others")
}

func TestRunStopsWhenEveryTaskFails(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	ten, dir := setUp(t, env)
	// An operator took the grants back: every task is refused.
	for _, o := range orchestrators {
		require.NoError(t, env.Policy.Revoke(context.Background(), ten.ID, readID(t, dir, o.Name),
			strings.Fields(o.Scopes), strings.Fields(o.Audiences), "test"))
	}
	var log bytes.Buffer
	ctx := context.Background()
	d, err := newDriver(ctx, config{BaseURL: env.URL, Tenant: "demo", KeysDir: dir, Rate: 50, Step: time.Millisecond,
		Out: &bytes.Buffer{}, Log: &log})
	require.NoError(t, err)
	c, err := d.run(ctx, ctx) // no duration: only the failures end it
	require.ErrorContains(t, err, "tasks in a row failed")
	require.ErrorContains(t, err, "403")
	require.GreaterOrEqual(t, c.Failed, int64(maxConsecutiveFailures))
	require.Contains(t, log.String(), "policy")
}
