package verify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/verify"
	"github.com/chitdev/chit/verify/verifyecho"
)

const api = "https://api.acme.example"

type testBundle struct {
	env  *chittest.Env
	tn   *chittest.Tenant
	orch string
	v    *verify.Verifier
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	env := chittest.Start(t)
	tn := env.NewTenant("acme", []string{"tickets:*"}, []string{api})
	v, err := verify.New(context.Background(), verify.Config{Issuer: tn.Issuer, Audience: api,
		ClientID: tn.Resource.ID, Key: tn.Resource.Key, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(v.Close)
	return &testBundle{env: env, tn: tn, orch: tn.ClientToken(tn.Orchestrator), v: v}
}

func (b *testBundle) agent(t *testing.T) *chittest.Agent {
	task := b.tn.CreateTask(b.orch, "tickets:read tickets:write", []string{api})
	a := b.tn.Register(b.tn.LaunchToken(b.orch, task, ""))
	a.Exchange("tickets:read")
	return a
}

// waitRevoked polls until the verifier refuses token (the feed reaches it),
// and returns how long that took.
func waitRevoked(t *testing.T, v *verify.Verifier, token string, since time.Time) time.Duration {
	t.Helper()
	for {
		if _, err := v.Verify(token); err != nil {
			require.ErrorIs(t, err, verify.ErrRevoked)
			return time.Since(since)
		}
		require.Less(t, time.Since(since), time.Second, "the verifier still accepts a revoked token")
		time.Sleep(5 * time.Millisecond)
	}
}

func TestVerifierValidatesFully(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.agent(t)

	c, err := b.v.Verify(a.Token, "tickets:read")
	require.NoError(t, err)
	require.Equal(t, "user:alice", c.Subject)
	require.Equal(t, []string{a.ID.String()}, c.Lineage())
	_, err = b.v.Verify(a.Token, "tickets:read") // from the cache
	require.NoError(t, err)

	_, err = b.v.Verify(a.Token, "tickets:write")
	require.ErrorIs(t, err, verify.ErrScope)
	_, err = b.v.Verify(a.Token[:len(a.Token)-4] + "AAAA")
	require.Error(t, err)

	// A token of another tenant (its own keys and issuer) is refused.
	other := b.env.NewTenant("globex", []string{"tickets:*"}, []string{api})
	otherOrch := other.ClientToken(other.Orchestrator)
	ot := other.Register(other.LaunchToken(otherOrch, other.CreateTask(otherOrch, "tickets:read", []string{api}), ""))
	ot.Exchange("")
	_, err = b.v.Verify(ot.Token)
	require.ErrorIs(t, err, verify.ErrSignature)

	// Another audience is refused.
	v2, err := verify.New(context.Background(), verify.Config{Issuer: b.tn.Issuer, Audience: "https://elsewhere.example",
		ClientID: b.tn.Resource.ID, Key: b.tn.Resource.Key})
	require.NoError(t, err)
	defer v2.Close()
	_, err = v2.Verify(a.Token)
	require.ErrorIs(t, err, verify.ErrAudience)
}

func TestVerifierFollowsRevocationsAtEveryLevel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, level := range []string{"token", "agent", "task", "chain"} {
		a := b.agent(t)
		_, err := b.v.Verify(a.Token)
		require.NoError(t, err)
		target := map[string]string{"token": chittest.Claims(t, a.Token)["jti"].(string), "agent": a.ID.String(),
			"task": a.TaskID.String(), "chain": a.ID.String()}[level]
		resp := b.tn.PostJSON("/v1/revocations", b.orch, map[string]string{"level": level, "target": target, "reason": "test"})
		require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
		lag := waitRevoked(t, b.v, a.Token, time.Now())
		t.Logf("%s revocation refused by the verifier after %s", level, lag)
	}
}

func TestVerifierRefusesTokensOfACompletedTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.agent(t)
	_, err := b.v.Verify(a.Token)
	require.NoError(t, err)
	resp := b.tn.PostJSON("/v1/tasks/"+a.TaskID.String()+"/complete", b.orch, nil)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	waitRevoked(t, b.v, a.Token, time.Now())
}

func TestVerifierRefusesADelegatedTokenWhenItsDelegatorIsRevoked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	parent := b.agent(t)
	resp := parent.Delegate("tickets:read")
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var lt struct {
		LaunchToken string `json:"launch_token"`
	}
	resp.JSON(t, &lt)
	child := b.tn.Register(lt.LaunchToken)
	child.Exchange("")
	_, err := b.v.Verify(child.Token)
	require.NoError(t, err)
	resp = b.tn.PostJSON("/v1/revocations", b.orch, map[string]string{"level": "agent", "target": parent.ID.String(), "reason": "test"})
	require.Equal(t, http.StatusCreated, resp.Status)
	waitRevoked(t, b.v, child.Token, time.Now())
}

func TestVerifierFollowsKeyRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.agent(t)
	_, _, err := b.env.Tenants.RotateKey(context.Background(), "acme")
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond) // the issuing side re-reads its active key within a second
	after := b.agent(t)
	require.NotEqual(t, chittest.Header(t, before.Token)["kid"], chittest.Header(t, after.Token)["kid"])
	for _, tok := range []string{before.Token, after.Token} {
		_, err := b.v.Verify(tok)
		require.NoError(t, err, "tokens of the retired and the new key both verify")
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.agent(t)
	h := b.v.Middleware("tickets:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(verify.ClaimsFrom(r.Context()).Subject))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(auth string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, do("Bearer "+a.Token))
	require.Equal(t, http.StatusUnauthorized, do(""))
	require.Equal(t, http.StatusUnauthorized, do("Bearer nope"))
	strict := b.v.Middleware("tickets:admin")(h)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	strict.ServeHTTP(rec, req)
	require.Equal(t, http.StatusForbidden, rec.Code)
}

func TestEchoMiddleware(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.agent(t)
	e := echo.New()
	e.GET("/tickets", func(c echo.Context) error {
		return c.String(http.StatusOK, verify.ClaimsFrom(c.Request().Context()).AgentID)
	}, verifyecho.Middleware(b.v, "tickets:read"))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/tickets", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	e.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, a.ID.String(), rec.Body.String())
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/tickets", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
}
