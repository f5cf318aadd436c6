package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/web"
)

type testBundle struct {
	srv   *httptest.Server
	svc   *tenants.Service
	clock *clock.Manual
	logs  *syncBuffer
	ready error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	raw := make([]byte, keyring.KEKSize)
	_, _ = rand.Read(raw)
	kek, err := keyring.NewKEK(raw)
	require.NoError(t, err)
	b := &testBundle{clock: clock.NewManual(time.Now()), logs: &syncBuffer{}}
	keys := keyring.New(db, kek, b.clock)
	b.svc = tenants.NewService(db, keys, b.clock)
	s, err := web.New(web.Config{BaseURL: "https://chit.example/", Version: "test"}, web.Deps{
		Tenants: b.svc,
		Keys:    keys,
		Ready:   func(context.Context) error { return b.ready },
		Logger:  slog.New(slog.NewJSONHandler(b.logs, nil)),
	})
	require.NoError(t, err)
	b.srv = httptest.NewServer(s.Handler())
	t.Cleanup(b.srv.Close)
	_, err = b.svc.Create(context.Background(), tenants.CreateParams{Slug: "acme", TrustDomain: "acme.example"})
	require.NoError(t, err)
	return b
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func requireProblem(t *testing.T, resp *http.Response, body []byte, status int) web.Problem {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, string(body))
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var p web.Problem
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Type)
	require.NotEmpty(t, p.Title)
	return p
}

func TestDiscoveryAtBothPaths(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{
		"/.well-known/oauth-authorization-server/t/acme",
		"/t/acme/.well-known/oauth-authorization-server",
	} {
		resp, body := get(t, b.srv.URL+path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		var md map[string]any
		require.NoError(t, json.Unmarshal(body, &md))
		require.Equal(t, "https://chit.example/t/acme", md["issuer"])
		require.Equal(t, "https://chit.example/t/acme/oauth2/token", md["token_endpoint"])
		require.Equal(t, "https://chit.example/t/acme/oauth2/introspect", md["introspection_endpoint"])
		require.Equal(t, "https://chit.example/t/acme/oauth2/revoke", md["revocation_endpoint"])
		require.Equal(t, "https://chit.example/t/acme/jwks.json", md["jwks_uri"])
		require.ElementsMatch(t, []any{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"}, md["grant_types_supported"])
		require.Equal(t, []any{"private_key_jwt"}, md["token_endpoint_auth_methods_supported"])
		require.Equal(t, []any{"EdDSA"}, md["token_endpoint_auth_signing_alg_values_supported"])
	}
}

func TestJWKSPublishesRotatedKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	jwksKids := func() []string {
		resp, body := get(t, b.srv.URL+"/t/acme/jwks.json")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "application/jwk-set+json", resp.Header.Get("Content-Type"))
		var set struct {
			Keys []struct{ Kty, Crv, Kid, Alg, Use, X, D string }
		}
		require.NoError(t, json.Unmarshal(body, &set))
		var kids []string
		for _, k := range set.Keys {
			require.Equal(t, "OKP", k.Kty)
			require.Equal(t, "Ed25519", k.Crv)
			require.Equal(t, "EdDSA", k.Alg)
			require.Equal(t, "sig", k.Use)
			require.NotEmpty(t, k.X)
			require.Empty(t, k.D, "no private key in the JWKS")
			kids = append(kids, k.Kid)
		}
		return kids
	}
	before := jwksKids()
	require.Len(t, before, 1)

	acme, next, err := b.svc.RotateKey(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, []string{next.KeyID, before[0]}, jwksKids(), "a rotated key whose tokens may be valid stays published")

	b.clock.Advance(acme.KeyPublishWindow() + time.Second)
	require.Equal(t, []string{next.KeyID}, jwksKids())
}

func TestUnknownTenantIs404(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{
		"/t/nobody/jwks.json",
		"/t/nobody/.well-known/oauth-authorization-server",
		"/.well-known/oauth-authorization-server/t/nobody",
		"/t/ACME/jwks.json",
		"/t/acme/nothing-here",
	} {
		resp, body := get(t, b.srv.URL+path)
		requireProblem(t, resp, body, http.StatusNotFound)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, _ := get(t, b.srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get(t, b.srv.URL+"/readyz")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	b.ready = errors.New("migrations pending")
	resp, body := get(t, b.srv.URL+"/readyz")
	p := requireProblem(t, resp, body, http.StatusServiceUnavailable)
	require.Contains(t, p.Detail, "migrations pending")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	get(t, b.srv.URL+"/t/acme/jwks.json")
	get(t, b.srv.URL+"/t/nobody/jwks.json")
	resp, body := get(t, b.srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	text := string(body)
	require.Contains(t, text, "go_goroutines")
	require.Contains(t, text, "process_resident_memory_bytes")
	require.Contains(t, text, `chit_http_requests_total{code="200",method="GET",route="/t/:tenant/jwks.json"} 1`)
	require.Contains(t, text, `chit_http_requests_total{code="404",method="GET",route="/t/:tenant/jwks.json"} 1`)
	require.Contains(t, text, `chit_http_request_duration_seconds_bucket{method="GET",route="/t/:tenant/jwks.json"`)
	require.NotContains(t, text, "nobody", "raw paths never become labels")
}

func TestOversizedBodyIs413(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := bytes.Repeat([]byte("a"), web.MaxBodyBytes+1)
	resp, err := http.Post(b.srv.URL+"/t/acme/jwks.json", "application/json", bytes.NewReader(big))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	requireProblem(t, resp, body, http.StatusRequestEntityTooLarge)
}

func TestFrontPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, body := get(t, b.srv.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"))
	require.Contains(t, string(body), `data-testid="version">Version test`)
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}

func TestParseBaseURL(t *testing.T) {
	t.Parallel()
	got, err := web.ParseBaseURL("https://chit.example/")
	require.NoError(t, err)
	require.Equal(t, "https://chit.example", got)
	for _, bad := range []string{"", "chit.example", "ftp://chit.example", "https://u:p@chit.example", "https://chit.example/?a=b", "https://chit.example/#x"} {
		_, err := web.ParseBaseURL(bad)
		require.Error(t, err, bad)
	}
}
