package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
)

// TestMain lets the test binary act as chit itself, so a test can run
// `chit serve` as a real process and kill it.
func TestMain(m *testing.M) {
	if args := os.Getenv("CHIT_TEST_RUN_MAIN"); args != "" {
		os.Exit(Run(context.Background(), strings.Fields(args), Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}))
	}
	os.Exit(m.Run())
}

// serveProcess starts `chit serve` as a child process on addr and waits
// until it is ready.
func serveProcess(t *testing.T, env map[string]string, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CHIT_TEST_RUN_MAIN=serve --addr "+addr)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("chit serve did not become ready")
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func writeJWK(t *testing.T, pub ed25519.PublicKey) string {
	t.Helper()
	data, err := jose.JSONWebKey{Key: pub}.MarshalJSON()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "key.jwk")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// A revocation that was answered survives a kill -9 of the replica that
// answered it: it was durable before the answer.
func TestRevocationSurvivesKill9(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = b.run(t, "tenant", "create", "acme", "--trust-domain", "acme.example")
	require.Equal(t, 0, code, stderr)
	newClient := func(kind string) *chittest.Client {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		code, out, stderr := b.run(t, "client", "create", "--tenant", "acme", "--kind", kind, "--name", kind, "--jwk", writeJWK(t, pub))
		require.Equal(t, 0, code, stderr)
		return &chittest.Client{ID: strings.TrimSpace(out), Key: priv}
	}
	orch, rs := newClient("orchestrator"), newClient("resource-server")
	code, _, stderr = b.run(t, "policy", "grant", "--tenant", "acme", "--client", orch.ID, "--scopes", "tickets:*",
		"--audiences", "https://api.acme.example")
	require.Equal(t, 0, code, stderr)

	addr := freeAddr(t)
	base := "http://" + addr
	server := serveProcess(t, b.env, addr)
	env := &chittest.Env{T: t, HTTP: &http.Client{Timeout: 10 * time.Second}, URL: base, Addr: base}
	tn := &chittest.Tenant{Env: env, Issuer: base + "/t/acme", TokenURL: base + "/t/acme/oauth2/token", Orchestrator: orch, Resource: rs}
	orchTok := tn.ClientToken(orch)
	task := tn.CreateTask(orchTok, "tickets:read", []string{"https://api.acme.example"})
	agent := tn.Register(tn.LaunchToken(orchTok, task, ""))
	revoked := agent.Exchange("")
	kept := agent.Exchange("")

	jti := chittest.Claims(t, revoked)["jti"].(string)
	resp := tn.PostJSON("/v1/revocations", orchTok, map[string]string{"level": "token", "target": jti, "reason": "crash test"})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	require.NoError(t, server.Process.Kill()) // SIGKILL, right after the answer
	_ = server.Wait()

	serveProcess(t, b.env, addr)
	require.Equal(t, false, tn.Introspect(revoked)["active"], "the answered revocation survived the crash")
	require.Equal(t, true, tn.Introspect(kept)["active"], "and revoked nothing else")
}
