package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants/keyring"
)

type testBundle struct {
	env map[string]string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	kek := filepath.Join(t.TempDir(), "kek")
	require.NoError(t, keyring.GenerateKEKFile(kek))
	return &testBundle{env: map[string]string{
		"DATABASE_URL":  pgtest.NewEmptyDatabase(t),
		"CHIT_KEK_FILE": kek,
	}}
}

// run executes one command line in-process and returns exit code and output.
func (b *testBundle) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return b.env[k] },
	})
	return code, stdout.String(), stderr.String()
}

// serve starts `chit serve` in-process on a free port and returns its base URL.
func (b *testBundle) serve(t *testing.T, args ...string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	out := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), Env{
			Stdin: strings.NewReader(""), Stdout: out, Stderr: out,
			Getenv: func(k string) string { return b.env[k] }, Ready: ready,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			require.Equal(t, 0, code, "serve exits cleanly on shutdown: %s", out.String())
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr, out
	case code := <-done:
		t.Fatalf("serve exited with %d: %s", code, out.String())
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if v != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, v), string(body))
	}
	return resp.StatusCode
}

func TestOperatorJourney(t *testing.T) {
	t.Parallel()
	b := setup(t)

	code, _, stderr := b.run(t, "tenant", "create", "acme", "--trust-domain", "acme.example")
	require.Equal(t, 1, code, "before migrations the CLI fails clearly")
	require.Contains(t, stderr, "chit migrate")

	code, out, stderr := b.run(t, "migrate", "--json")
	require.Equal(t, 0, code, stderr)
	var mig struct{ Version int64 }
	require.NoError(t, json.Unmarshal([]byte(out), &mig))
	require.Positive(t, mig.Version)
	code, out, _ = b.run(t, "migrate")
	require.Equal(t, 0, code)
	require.Contains(t, out, "(0 applied now)", "migrate is idempotent")

	code, out, stderr = b.run(t, "tenant", "create", "acme", "--trust-domain", "acme.example", "--json")
	require.Equal(t, 0, code, stderr)
	var created struct {
		Slug            string `json:"slug"`
		TrustDomain     string `json:"trust_domain"`
		TokenTTLSeconds int    `json:"token_ttl_seconds"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	require.Equal(t, "acme.example", created.TrustDomain)
	require.Equal(t, 300, created.TokenTTLSeconds)

	code, _, stderr = b.run(t, "tenant", "create", "evil", "--trust-domain", "spiffe://Evil Domain")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "trust_domain")
	code, out, _ = b.run(t, "tenant", "list")
	require.Equal(t, 0, code)
	require.NotContains(t, out, "evil", "a refused tenant is not created")

	code, out, stderr = b.run(t, "tenant", "update", "acme", "--token-ttl", "2m", "--max-depth", "4", "--json")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, `"token_ttl_seconds": 120`)
	require.Contains(t, out, `"max_depth": 4`)
	require.Contains(t, out, `"max_renewals": 10`)
	code, _, _ = b.run(t, "tenant", "update", "acme", "--max-depth", "99")
	require.Equal(t, 1, code)
	code, _, _ = b.run(t, "tenant", "update", "acme")
	require.Equal(t, 2, code, "an update with nothing to change is a usage error")

	base, _ := b.serve(t)
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/.well-known/oauth-authorization-server/t/acme", &md))
	require.Equal(t, base+"/t/acme", md.Issuer)
	require.Equal(t, base+"/t/acme/jwks.json", md.JWKSURI)

	var jwks struct{ Keys []struct{ Kid string } }
	require.Equal(t, http.StatusOK, getJSON(t, md.JWKSURI, &jwks))
	require.Len(t, jwks.Keys, 1)

	// A rotation through the CLI shows on the running server at once.
	code, out, stderr = b.run(t, "key", "rotate", "--tenant", "acme", "--json")
	require.Equal(t, 0, code, stderr)
	var rotated struct{ Kid string }
	require.NoError(t, json.Unmarshal([]byte(out), &rotated))
	require.Equal(t, http.StatusOK, getJSON(t, md.JWKSURI, &jwks))
	require.Len(t, jwks.Keys, 2)
	require.Equal(t, rotated.Kid, jwks.Keys[0].Kid)

	code, out, _ = b.run(t, "key", "list", "--tenant", "acme")
	require.Equal(t, 0, code)
	require.Contains(t, out, "retired, published")

	require.Equal(t, http.StatusNotFound, getJSON(t, base+"/t/nobody/jwks.json", nil))
	require.Equal(t, http.StatusOK, getJSON(t, base+"/readyz", nil))
}

func TestServeDemoOnFirstRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, stderr := b.run(t, "migrate")
	require.Equal(t, 0, code, stderr)
	base, out := b.serve(t, "--demo")
	require.Contains(t, out.String(), "created demo tenant")
	require.Contains(t, out.String(), base+"/t/demo/.well-known/oauth-authorization-server")
	var jwks struct{ Keys []struct{ Kid string } }
	require.Equal(t, http.StatusOK, getJSON(t, base+"/t/demo/jwks.json", &jwks))
	require.Len(t, jwks.Keys, 1)
}

func TestServeRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, stderr := b.run(t, "serve", "--addr", "127.0.0.1:0")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "chit migrate", "an unmigrated database is refused")

	b.env["CHIT_KEK_FILE"] = filepath.Join(t.TempDir(), "missing")
	code, _, stderr = b.run(t, "serve", "--addr", "127.0.0.1:0")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "key-encryption key")

	code, _, stderr = b.run(t, "serve", "--addr", "127.0.0.1:0", "--base-url", "not a url")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--base-url")

	delete(b.env, "DATABASE_URL")
	code, _, stderr = b.run(t, "migrate")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "DATABASE_URL")
}
