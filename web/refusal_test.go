package web_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants"
)

// The refusals of issue 3, each over real HTTP: the right status and error
// code, nothing changed, and a why-denied trace naming the failed check.

const fullScope = "kb:read tickets:read tickets:write"

// world is a tenant with an orchestrator, a task and one registered agent.
type world struct {
	env   *chittest.Env
	tn    *chittest.Tenant
	orch  string // the orchestrator's own access token
	task  uuid.UUID
	agent *chittest.Agent
}

func newWorld(t *testing.T) *world {
	t.Helper()
	env := chittest.Start(t)
	return worldOn(t, env, "acme")
}

func worldOn(t *testing.T, env *chittest.Env, slug string) *world {
	t.Helper()
	tn := env.NewTenant(slug, []string{"tickets:*", "kb:read"}, []string{api})
	w := &world{env: env, tn: tn, orch: tn.ClientToken(tn.Orchestrator)}
	w.task = tn.CreateTask(w.orch, fullScope, []string{api})
	w.agent = tn.Register(tn.LaunchToken(w.orch, w.task, ""))
	return w
}

// child registers a sub-agent of parent with scope; parent must hold a token.
func (w *world) child(t *testing.T, parent *chittest.Agent, scope string) *chittest.Agent {
	t.Helper()
	resp := parent.Delegate(scope)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var lt struct {
		LaunchToken string `json:"launch_token"`
	}
	resp.JSON(t, &lt)
	return w.tn.Register(lt.LaunchToken)
}

func (w *world) token(form url.Values) *chittest.Response {
	return w.tn.PostForm("/oauth2/token", form)
}

func (w *world) update(t *testing.T, change tenants.SettingsChange) {
	t.Helper()
	_, err := w.env.Tenants.Update(context.Background(), w.tn.T.Slug.String(), change)
	require.NoError(t, err)
}

func mediaType(t *testing.T, r *chittest.Response) string {
	t.Helper()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	require.NoError(t, err, "Content-Type %q", r.Header.Get("Content-Type"))
	return mt
}

// requireOAuthError checks an RFC 6749 error (with the RFC 9457 members)
// and returns its denial_id. The body must echo none of secrets.
func requireOAuthError(t *testing.T, r *chittest.Response, status int, code string, secrets ...string) string {
	t.Helper()
	require.Equal(t, status, r.Status, string(r.Body))
	require.Equal(t, "application/json", mediaType(t, r), string(r.Body))
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Type        string `json:"type"`
		Title       string `json:"title"`
		Status      int    `json:"status"`
		DenialID    string `json:"denial_id"`
	}
	r.JSON(t, &e)
	require.Equal(t, code, e.Error, string(r.Body))
	require.NotEmpty(t, e.Description)
	require.NotEmpty(t, e.Type)
	require.NotEmpty(t, e.Title)
	require.Equal(t, status, e.Status)
	require.NotEmpty(t, e.DenialID, "every refusal gets a denial_id: %s", r.Body)
	for _, s := range secrets {
		require.NotContains(t, string(r.Body), s, "an error never echoes a token")
	}
	return e.DenialID
}

// requireRefusal checks an RFC 9457 answer of the API and returns its denial_id.
func requireRefusal(t *testing.T, r *chittest.Response, status int, secrets ...string) string {
	t.Helper()
	require.Equal(t, status, r.Status, string(r.Body))
	require.Equal(t, "application/problem+json", mediaType(t, r), string(r.Body))
	var p struct {
		Type     string `json:"type"`
		Title    string `json:"title"`
		Status   int    `json:"status"`
		DenialID string `json:"denial_id"`
	}
	r.JSON(t, &p)
	require.NotEmpty(t, p.Type)
	require.NotEmpty(t, p.Title)
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.DenialID, "every refusal gets a denial_id: %s", r.Body)
	for _, s := range secrets {
		require.NotContains(t, string(r.Body), s, "an error never echoes a token")
	}
	return p.DenialID
}

// requireTrace reads a denial trace over the API as bearer and checks it
// names check and carries none of secrets.
func requireTrace(t *testing.T, tn *chittest.Tenant, bearer, id string, check oauth.Check, secrets ...string) map[string]any {
	t.Helper()
	resp := tn.DenialOf(bearer, id)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	trace := resp.Map(t)
	require.Equal(t, id, trace["denial_id"])
	require.Equal(t, string(check), trace["check"], string(resp.Body))
	require.Equal(t, tn.T.Slug.String(), trace["tenant"])
	require.NotEmpty(t, trace["reason"])
	for _, s := range secrets {
		require.NotContains(t, string(resp.Body), s, "a trace never holds the token")
	}
	return trace
}

// requireStored checks the trace of a refusal nobody outside the console
// may read (an anonymous caller's): it is in the tenant's denials.
func requireStored(t *testing.T, tn *chittest.Tenant, id string, check oauth.Check) {
	t.Helper()
	var got string
	err := tn.Env.DB.InTenantTx(context.Background(), tn.T.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT check_name FROM denials WHERE id = $1`, id).Scan(&got)
	})
	require.NoError(t, err, "denial %s is stored", id)
	require.Equal(t, string(check), got)
}

// ledger is what a refusal must leave as it was.
type ledger struct {
	Tasks, Agents, Exchanges, Tokens, Revoked, Revocations int
	LaunchTokens, LaunchConsumed, Challenges, ChalConsumed int
}

func snapshot(t *testing.T, tn *chittest.Tenant) ledger {
	t.Helper()
	var l ledger
	err := tn.Env.DB.InTenantTx(context.Background(), tn.T.ID, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM tasks), (SELECT count(*) FROM agents), (SELECT coalesce(sum(exchanges), 0) FROM agents),
			(SELECT count(*) FROM tokens), (SELECT count(*) FROM tokens WHERE revoked_at IS NOT NULL),
			(SELECT count(*) FROM revocations),
			(SELECT count(*) FROM launch_tokens), (SELECT count(*) FROM launch_tokens WHERE consumed_at IS NOT NULL),
			(SELECT count(*) FROM challenges), (SELECT count(*) FROM challenges WHERE consumed_at IS NOT NULL)`).
			Scan(&l.Tasks, &l.Agents, &l.Exchanges, &l.Tokens, &l.Revoked, &l.Revocations,
				&l.LaunchTokens, &l.LaunchConsumed, &l.Challenges, &l.ChalConsumed)
	})
	require.NoError(t, err)
	return l
}

func requireUnchanged(t *testing.T, tn *chittest.Tenant, before ledger) {
	t.Helper()
	require.Equal(t, before, snapshot(t, tn), "a refusal changes nothing")
}

func requireActive(t *testing.T, tn *chittest.Tenant, active bool, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		require.Equal(t, active, tn.Introspect(tok)["active"])
	}
}

// JWTs crafted by hand, the way an attacker would.

func segment(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(data)
}

func unsignedJWT(t *testing.T, header, claims any) string {
	t.Helper()
	return segment(t, header) + "." + segment(t, claims) + "."
}

func hs256JWT(t *testing.T, secret []byte, header, claims any) string {
	t.Helper()
	input := segment(t, header) + "." + segment(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func assertionClaims(sub, aud string, now time.Time) map[string]any {
	return map[string]any{"iss": sub, "sub": sub, "aud": aud, "jti": uuid.NewString(),
		"iat": now.Unix(), "exp": now.Add(30 * time.Second).Unix()}
}

func firstExchange(assertion string) url.Values {
	return url.Values{"grant_type": {oauth.GrantTokenExchange}, "subject_token": {assertion},
		"subject_token_type": {oauth.TokenTypeJWT}}
}

func renewal(current, actor, scope string) url.Values {
	f := url.Values{"grant_type": {oauth.GrantTokenExchange}, "subject_token": {current},
		"subject_token_type": {oauth.TokenTypeAccessToken}, "actor_token": {actor}, "actor_token_type": {oauth.TokenTypeJWT}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

func clientCredentials(tn *chittest.Tenant, assertion string) url.Values {
	return url.Values{"grant_type": {oauth.GrantClientCredentials},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
}

func accessTokenOf(t *testing.T, r *chittest.Response) string {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(t, &tok)
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

// 1. Scope only attenuates.

func TestRenewalWiderScopeRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.agent.Exchange("tickets:read")

	before := snapshot(t, w.tn)
	actor := w.agent.Assertion()
	resp := w.token(renewal(tok, actor, "tickets:read tickets:write"))
	id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidScope, tok, actor)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, tok, id, oauth.CheckScope, tok, actor)
	require.Equal(t, "tickets:read", trace["expected"])
	require.Equal(t, "tickets:read tickets:write", trace["presented"])
	require.Equal(t, w.agent.ID.String(), trace["agent_id"])
	requireTrace(t, w.tn, w.orch, id, oauth.CheckScope) // the task's orchestrator reads it too

	// The current token is untouched and can still be renewed within its scope.
	requireActive(t, w.tn, true, tok)
	renewed := w.agent.Renew("")
	require.Equal(t, "tickets:read", chittest.Claims(t, renewed)["scope"])
}

func TestDelegationWiderScopeRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// The agent may hold all of the task's scope, but delegates from the
	// token it presents, which holds tickets:read only.
	tok := w.agent.Exchange("tickets:read")

	for _, wider := range []string{"tickets:read tickets:write", "kb:read", "admin"} {
		before := snapshot(t, w.tn)
		resp := w.agent.Delegate(wider)
		id := requireRefusal(t, resp, http.StatusForbidden, tok)
		requireUnchanged(t, w.tn, before)
		trace := requireTrace(t, w.tn, tok, id, oauth.CheckScope, tok)
		require.Equal(t, "tickets:read", trace["expected"])
		require.Equal(t, wider, trace["presented"])
	}
	requireActive(t, w.tn, true, tok)
	resp := w.agent.Delegate("tickets:read")
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
}

// 2. Depth ≤ the tenant's maximum.

func TestDepthOverDefaultMaxRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.agent.Exchange("")
	child := w.child(t, w.agent, "tickets:read")
	child.Exchange("")
	grandchild := w.child(t, child, "tickets:read")
	gcTok := grandchild.Exchange("")

	before := snapshot(t, w.tn)
	resp := grandchild.Delegate("tickets:read")
	id := requireRefusal(t, resp, http.StatusForbidden, gcTok)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, gcTok, id, oauth.CheckDepth, gcTok)
	require.Equal(t, "depth ≤ 3", trace["expected"])
	require.Equal(t, "depth 4", trace["presented"])
	requireTrace(t, w.tn, w.orch, id, oauth.CheckDepth)
	requireActive(t, w.tn, true, gcTok, child.Token, w.agent.Token)
}

func TestDepthAfterTenantUpdateRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.agent.Exchange("")
	one := 1
	w.update(t, tenants.SettingsChange{MaxDepth: &one})

	before := snapshot(t, w.tn)
	resp := w.agent.Delegate("tickets:read")
	id := requireRefusal(t, resp, http.StatusForbidden, tok)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, tok, id, oauth.CheckDepth)
	require.Equal(t, "depth ≤ 1", trace["expected"])
	require.Equal(t, "depth 2", trace["presented"])
	requireActive(t, w.tn, true, tok)

	// Raising it again allows the sub-agent on the next request.
	two := 2
	w.update(t, tenants.SettingsChange{MaxDepth: &two})
	resp = w.agent.Delegate("tickets:read")
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
}

func TestDepthLoweredRefusesDeeperAgents(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rootTok := w.agent.Exchange("")
	child := w.child(t, w.agent, "tickets:read")
	childTok := child.Exchange("")

	// The tenant lowers its maximum: the depth-2 agent gets no new token,
	// neither a first exchange nor a renewal; the root agent still does.
	one := 1
	w.update(t, tenants.SettingsChange{MaxDepth: &one})
	before := snapshot(t, w.tn)
	for _, form := range []url.Values{child.ExchangeForm(""), child.RenewForm("")} {
		resp := w.token(form)
		id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, childTok)
		trace := requireTrace(t, w.tn, w.orch, id, oauth.CheckDepth)
		require.Equal(t, "depth ≤ 1", trace["expected"])
		require.Equal(t, "depth 2", trace["presented"])
	}
	requireUnchanged(t, w.tn, before)
	requireActive(t, w.tn, true, childTok) // refused renewal revokes nothing
	w.agent.Token = rootTok
	w.agent.Renew("")
}

// 3. Expired and replayed assertions.

func TestExpiredAssertionRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.agent
	now := time.Now()

	// Past exp beyond the 30 s skew.
	expired := chittest.SignJWT(a.Key, map[string]any{"iss": a.SPIFFEID, "sub": a.SPIFFEID, "aud": w.tn.TokenURL,
		"jti": uuid.NewString(), "iat": now.Add(-3 * time.Minute).Unix(), "exp": now.Add(-2 * time.Minute).Unix()})
	before := snapshot(t, w.tn)
	resp := w.token(firstExchange(expired))
	id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, expired)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, w.orch, id, oauth.CheckExpired, expired)
	require.Equal(t, a.ID.String(), trace["agent_id"])
	require.Equal(t, w.task.String(), trace["task_id"])

	// Within the skew is still accepted: the limit is the skew, not "now".
	recent := chittest.SignJWT(a.Key, map[string]any{"iss": a.SPIFFEID, "sub": a.SPIFFEID, "aud": w.tn.TokenURL,
		"jti": uuid.NewString(), "iat": now.Add(-40 * time.Second).Unix(), "exp": now.Add(-10 * time.Second).Unix()})
	tok := accessTokenOf(t, w.token(firstExchange(recent)))
	requireActive(t, w.tn, true, tok)

	// An expired actor assertion on renewal: the current token survives.
	before = snapshot(t, w.tn)
	expiredActor := chittest.SignJWT(a.Key, map[string]any{"iss": a.SPIFFEID, "sub": a.SPIFFEID, "aud": w.tn.TokenURL,
		"jti": uuid.NewString(), "iat": now.Add(-3 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()})
	resp = w.token(renewal(tok, expiredActor, ""))
	id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, tok, expiredActor)
	requireUnchanged(t, w.tn, before)
	requireTrace(t, w.tn, tok, id, oauth.CheckExpired)
	requireActive(t, w.tn, true, tok)
}

func TestReplayedAssertionRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	assertion := w.agent.Assertion()
	tok := accessTokenOf(t, w.token(firstExchange(assertion)))

	before := snapshot(t, w.tn)
	resp := w.token(firstExchange(assertion))
	id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, assertion)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, tok, id, oauth.CheckReplay, assertion) // the refused agent reads it
	require.Equal(t, w.agent.ID.String(), trace["agent_id"])
	requireTrace(t, w.tn, w.orch, id, oauth.CheckReplay)
	requireActive(t, w.tn, true, tok)

	// An actor assertion is single-use too: replaying the one a renewal
	// used, with the renewed token, is refused and revokes nothing.
	actor := w.agent.Assertion()
	renewed := accessTokenOf(t, w.token(renewal(tok, actor, "")))
	before = snapshot(t, w.tn)
	resp = w.token(renewal(renewed, actor, ""))
	id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, renewed, actor)
	requireUnchanged(t, w.tn, before)
	requireTrace(t, w.tn, renewed, id, oauth.CheckReplay)
	requireActive(t, w.tn, true, renewed)
	requireActive(t, w.tn, false, tok)
}

// 4. Launch tokens are single-use.

type challengeAnswer struct {
	ChallengeID uuid.UUID `json:"challenge_id"`
	Nonce       string    `json:"nonce"`
}

func TestReusedLaunchTokenRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	launch := w.tn.LaunchToken(w.orch, w.task, "tickets:read")

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	first := w.tn.Challenge(launch, pub)
	require.Equal(t, http.StatusCreated, first.Status, string(first.Body))
	var ch challengeAnswer
	first.JSON(t, &ch)

	before := snapshot(t, w.tn)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	resp := w.tn.Challenge(launch, otherPub)
	id := requireRefusal(t, resp, http.StatusConflict, launch)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, w.orch, id, oauth.CheckReplay, launch)
	require.Equal(t, w.task.String(), trace["task_id"])

	// The replay spoiled nothing: the first challenge still completes.
	resp = w.tn.RegisterWith(ch.ChallengeID, ch.Nonce, priv)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	require.Equal(t, "tickets:read", resp.Map(t)["scope"])
}

func TestBadChallengeLeavesLaunchTokenUsable(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	launch := w.tn.LaunchToken(w.orch, w.task, "")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	private, err := json.Marshal(map[string]string{"kty": "OKP", "crv": "Ed25519",
		"x": base64.RawURLEncoding.EncodeToString(pub), "d": base64.RawURLEncoding.EncodeToString(priv.Seed())})
	require.NoError(t, err)

	before := snapshot(t, w.tn)
	for _, key := range []json.RawMessage{
		private, // chit must never receive a private key
		json.RawMessage(`{"kty":"OKP","crv":"X25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`),
		json.RawMessage(`{"kty":"oct","k":"c2VjcmV0"}`),
		json.RawMessage(`"not a JWK"`),
	} {
		resp := w.tn.PostJSON("/v1/agents/challenge", "", map[string]any{"launch_token": launch, "public_key": key})
		id := requireRefusal(t, resp, http.StatusBadRequest, launch, base64.RawURLEncoding.EncodeToString(priv.Seed()))
		requireStored(t, w.tn, id, oauth.CheckFormat)
	}
	// An unknown launch token is refused too, and consumes nothing.
	resp := w.tn.Challenge("chl_"+strings.Repeat("A", 43), pub)
	id := requireRefusal(t, resp, http.StatusUnauthorized)
	requireStored(t, w.tn, id, oauth.CheckSignature)
	requireUnchanged(t, w.tn, before)

	// None of those refusals consumed the launch token.
	agent := w.tn.Register(launch)
	require.Equal(t, w.task, agent.TaskID)
}

func TestConcurrentChallengesOneLaunchToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	launch := w.tn.LaunchToken(w.orch, w.task, "")
	before := snapshot(t, w.tn)

	const n = 20
	type result struct {
		resp *chittest.Response
		key  ed25519.PrivateKey
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		body, _ := json.Marshal(map[string]any{"launch_token": launch, "public_key": chittest.PublicJWK(pub)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = result{post(w.env.HTTP, w.tn.Issuer+"/v1/agents/challenge", "application/json", body), priv}
		}()
	}
	close(start)
	wg.Wait()

	var winners []result
	for _, r := range results {
		switch r.resp.Status {
		case http.StatusCreated:
			winners = append(winners, r)
		case http.StatusConflict:
			id := requireRefusal(t, r.resp, http.StatusConflict, launch)
			requireTrace(t, w.tn, w.orch, id, oauth.CheckReplay)
		default:
			require.Failf(t, "unexpected answer", "%d %s", r.resp.Status, r.resp.Body)
		}
	}
	require.Len(t, winners, 1, "exactly one challenge wins the launch token")
	after := snapshot(t, w.tn)
	require.Equal(t, before.Challenges+1, after.Challenges)
	require.Equal(t, before.LaunchConsumed+1, after.LaunchConsumed)

	var ch challengeAnswer
	winners[0].resp.JSON(t, &ch)
	resp := w.tn.RegisterWith(ch.ChallengeID, ch.Nonce, winners[0].key)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	require.Equal(t, before.Agents+1, snapshot(t, w.tn).Agents)
}

// post sends one request without touching testing.T, for goroutines.
func post(c *http.Client, target, contentType string, body []byte) *chittest.Response {
	resp, err := c.Post(target, contentType, bytes.NewReader(body))
	if err != nil {
		return &chittest.Response{Status: -1, Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return &chittest.Response{Status: -1, Body: []byte(err.Error())}
	}
	return &chittest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// 5. A signature by another key.

func TestAssertionSignedByAnotherKeyRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)

	forged := chittest.Assertion(stranger, w.agent.SPIFFEID, w.tn.TokenURL, 30*time.Second)
	before := snapshot(t, w.tn)
	resp := w.token(firstExchange(forged))
	id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, forged)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, w.orch, id, oauth.CheckSignature, forged)
	require.Equal(t, w.agent.ID.String(), trace["agent_id"])

	// As the actor of a renewal: the current token is not revoked.
	tok := w.agent.Exchange("")
	before = snapshot(t, w.tn)
	resp = w.token(renewal(tok, chittest.Assertion(stranger, w.agent.SPIFFEID, w.tn.TokenURL, 30*time.Second), ""))
	id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, tok)
	requireUnchanged(t, w.tn, before)
	requireTrace(t, w.tn, tok, id, oauth.CheckSignature)
	requireActive(t, w.tn, true, tok)

	// A client assertion by another key: 401 invalid_client, no token.
	orch := w.tn.Orchestrator
	forged = chittest.Assertion(stranger, orch.ID, w.tn.TokenURL, time.Minute)
	before = snapshot(t, w.tn)
	resp = w.token(clientCredentials(w.tn, forged))
	id = requireOAuthError(t, resp, http.StatusUnauthorized, oauth.ErrInvalidClient, forged)
	require.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
	requireUnchanged(t, w.tn, before)
	requireTrace(t, w.tn, w.orch, id, oauth.CheckSignature, forged) // the refused client reads it
}

// 6. alg=none and HS256 keyed with the public key.

func TestAlgNoneAndHS256Refused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, orch := w.agent, w.tn.Orchestrator
	now := time.Now()
	agentPub := a.Key.Public().(ed25519.PublicKey)
	orchPub := orch.Key.Public().(ed25519.PublicKey)

	type forgery struct {
		name, token string
	}
	forge := func(sub string, pub ed25519.PublicKey) []forgery {
		claims := assertionClaims(sub, w.tn.TokenURL, now)
		jwk := chittest.PublicJWK(pub)
		return []forgery{
			{"alg none", unsignedJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, claims)},
			{"alg None", unsignedJWT(t, map[string]any{"alg": "None"}, claims)},
			{"alg none with a signature", unsignedJWT(t, map[string]any{"alg": "none"}, claims) + "c2ln"},
			{"HS256 keyed with the raw public key", hs256JWT(t, pub, map[string]any{"alg": "HS256", "typ": "JWT"}, claims)},
			{"HS256 keyed with the public JWK", hs256JWT(t, jwk, map[string]any{"alg": "HS256", "typ": "JWT"}, claims)},
			{"HS256 keyed with the base64url key", hs256JWT(t, []byte(base64.RawURLEncoding.EncodeToString(pub)),
				map[string]any{"alg": "HS256", "typ": "JWT"}, claims)},
		}
	}

	for _, f := range forge(a.SPIFFEID, agentPub) {
		before := snapshot(t, w.tn)
		resp := w.token(firstExchange(f.token))
		id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, f.token)
		requireUnchanged(t, w.tn, before)
		requireStored(t, w.tn, id, oauth.CheckFormat)
	}
	// The agent's real assertion still works afterwards: nothing was consumed.
	tok := a.Exchange("")
	for _, f := range forge(a.SPIFFEID, agentPub) {
		before := snapshot(t, w.tn)
		resp := w.token(renewal(tok, f.token, ""))
		id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, f.token, tok)
		requireUnchanged(t, w.tn, before)
		requireStored(t, w.tn, id, oauth.CheckFormat)
	}
	requireActive(t, w.tn, true, tok)

	for _, f := range forge(orch.ID, orchPub) {
		before := snapshot(t, w.tn)
		resp := w.token(clientCredentials(w.tn, f.token))
		id := requireOAuthError(t, resp, http.StatusUnauthorized, oauth.ErrInvalidClient, f.token)
		require.NotEmpty(t, resp.Header.Get("WWW-Authenticate"), f.name)
		requireUnchanged(t, w.tn, before)
		requireStored(t, w.tn, id, oauth.CheckFormat)

		// The same forged client assertion on a token exchange is still client authentication.
		form := firstExchange(a.Assertion())
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", f.token)
		resp = w.token(form)
		id = requireOAuthError(t, resp, http.StatusUnauthorized, oauth.ErrInvalidClient, f.token)
		requireUnchanged(t, w.tn, before)
		requireStored(t, w.tn, id, oauth.CheckFormat)
	}
}

// tenantKey fetches the tenant's published signing key and kid.
func tenantKey(t *testing.T, tn *chittest.Tenant) (ed25519.PublicKey, string) {
	t.Helper()
	resp := tn.Env.Do(http.MethodGet, tn.Issuer+"/jwks.json", "", "", nil)
	require.Equal(t, http.StatusOK, resp.Status)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			X   string `json:"x"`
		} `json:"keys"`
	}
	resp.JSON(t, &set)
	require.NotEmpty(t, set.Keys)
	x, err := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	require.NoError(t, err)
	return x, set.Keys[0].Kid
}

func TestForgedAccessTokensRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	real := w.agent.Exchange("tickets:read")
	pub, kid := tenantKey(t, w.tn)

	// The real token's claims, widened, under forged headers.
	claims := chittest.Claims(t, real)
	claims["scope"] = fullScope
	claims["jti"] = uuid.NewString()
	forgeries := []string{
		unsignedJWT(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, claims),
		hs256JWT(t, pub, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims),
	}
	for _, forged := range forgeries {
		before := snapshot(t, w.tn)
		// As a bearer on the API.
		resp := w.agent.Tenant.PostJSON("/v1/agents/"+w.agent.ID.String()+"/launch-tokens", forged, map[string]string{"scope": "kb:read"})
		id := requireRefusal(t, resp, http.StatusUnauthorized, forged)
		requireStored(t, w.tn, id, oauth.CheckFormat)
		// As the subject of a renewal.
		resp = w.token(renewal(forged, w.agent.Assertion(), ""))
		id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, forged)
		requireStored(t, w.tn, id, oauth.CheckFormat)
		requireUnchanged(t, w.tn, before)
		// Introspection says inactive and nothing more.
		require.Equal(t, map[string]any{"active": false}, w.tn.Introspect(forged))
	}
	requireActive(t, w.tn, true, real)
}

// 7. A token of tenant A at tenant B.

func TestTokenOfAnotherTenantRefused(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	a := worldOn(t, env, "alpha")
	b := worldOn(t, env, "bravo")
	aTok := a.agent.Exchange("")
	bTok := b.agent.Exchange("")

	// Introspection at B: inactive, nothing else; at A it is unchanged.
	require.Equal(t, map[string]any{"active": false}, b.tn.Introspect(aTok))
	require.Equal(t, true, a.tn.Introspect(aTok)["active"])

	// A's agent token as a bearer at B's API: 401.
	beforeA, beforeB := snapshot(t, a.tn), snapshot(t, b.tn)
	resp := b.tn.PostJSON("/v1/agents/"+a.agent.ID.String()+"/launch-tokens", aTok, map[string]string{"scope": "kb:read"})
	id := requireRefusal(t, resp, http.StatusUnauthorized, aTok)
	requireStored(t, b.tn, id, oauth.CheckTenant)
	resp = b.tn.PostJSON("/v1/tasks", a.orch, map[string]any{"principal": "user:mallory", "scope": "kb:read",
		"audiences": []string{api}, "ttl_seconds": 600})
	id = requireRefusal(t, resp, http.StatusUnauthorized, a.orch)
	requireStored(t, b.tn, id, oauth.CheckTenant)
	resp = b.tn.DenialOf(aTok, id)
	requireRefusal(t, resp, http.StatusUnauthorized, aTok)

	// A's agent assertion at B's token endpoint, addressed to either.
	for _, aud := range []string{a.tn.TokenURL, b.tn.TokenURL} {
		assertion := chittest.Assertion(a.agent.Key, a.agent.SPIFFEID, aud, 30*time.Second)
		resp = b.token(firstExchange(assertion))
		id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, assertion)
		requireStored(t, b.tn, id, oauth.CheckTenant)
		// ...and A's token as the subject of a renewal at B.
		resp = b.token(renewal(aTok, assertion, ""))
		id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, assertion, aTok)
		requireStored(t, b.tn, id, oauth.CheckTenant)
		// A's orchestrator authenticating at B is an unknown client there:
		// B's trace must not reveal that the client exists elsewhere.
		clientAssertion := chittest.Assertion(a.tn.Orchestrator.Key, a.tn.Orchestrator.ID, aud, time.Minute)
		resp = b.token(clientCredentials(b.tn, clientAssertion))
		id = requireOAuthError(t, resp, http.StatusUnauthorized, oauth.ErrInvalidClient, clientAssertion)
		requireStored(t, b.tn, id, oauth.CheckSignature)
		// ...and it cannot introspect there either.
		form := url.Values{"token": {aTok}, "client_assertion": {chittest.Assertion(a.tn.Resource.Key, a.tn.Resource.ID, aud, time.Minute)},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
		resp = b.tn.PostForm("/oauth2/introspect", form)
		requireOAuthError(t, resp, http.StatusUnauthorized, oauth.ErrInvalidClient, aTok)
		require.NotContains(t, string(resp.Body), `"active"`)
	}
	require.Equal(t, beforeA, snapshot(t, a.tn))
	require.Equal(t, beforeB, snapshot(t, b.tn))
	requireActive(t, a.tn, true, aTok)
	requireActive(t, b.tn, true, bTok)
}

// 8. Oversized and malformed bodies.

// sendChunked posts body with no Content-Length, so only reading it can
// find it too large.
func sendChunked(t *testing.T, env *chittest.Env, target, contentType, bearer string, body []byte) *chittest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, io.MultiReader(bytes.NewReader(body)))
	require.NoError(t, err)
	req.ContentLength = -1
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := env.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return &chittest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

func TestOversizedBodiesRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	huge := strings.Repeat("a", 1<<20)
	task, err := json.Marshal(map[string]any{"principal": "user:alice", "purpose": huge, "scope": "kb:read",
		"audiences": []string{api}, "ttl_seconds": 600})
	require.NoError(t, err)
	form := []byte(firstExchange(w.agent.Assertion()).Encode() + "&scope=" + huge)

	before := snapshot(t, w.tn)
	for _, chunked := range []bool{false, true} {
		send := func(target, contentType, bearer string, body []byte) *chittest.Response {
			if chunked {
				return sendChunked(t, w.env, target, contentType, bearer, body)
			}
			return w.env.Do(http.MethodPost, target, contentType, bearer, body)
		}
		resp := send(w.tn.Issuer+"/v1/tasks", "application/json", w.orch, task)
		id := requireRefusal(t, resp, http.StatusRequestEntityTooLarge)
		requireTrace(t, w.tn, w.orch, id, oauth.CheckFormat)

		resp = send(w.tn.TokenURL, "application/x-www-form-urlencoded", "", form)
		id = requireOAuthError(t, resp, http.StatusRequestEntityTooLarge, oauth.ErrInvalidRequest)
		requireStored(t, w.tn, id, oauth.CheckFormat)
	}
	requireUnchanged(t, w.tn, before)
}

func TestMalformedAPIBodiesRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	good := `{"principal":"user:alice","purpose":"p","scope":"kb:read","audiences":["` + api + `"],"ttl_seconds":600}`
	cases := []struct {
		name, contentType, body string
		status                  int
	}{
		{"bad JSON", "application/json", `{"principal":`, http.StatusBadRequest},
		{"not an object", "application/json", `["kb:read"]`, http.StatusBadRequest},
		{"unknown field", "application/json", strings.TrimSuffix(good, "}") + `,"admin":true}`, http.StatusBadRequest},
		{"wrong type", "application/json", strings.Replace(good, `600`, `"600"`, 1), http.StatusBadRequest},
		{"trailing data", "application/json", good + good, http.StatusBadRequest},
		{"empty body", "application/json", ``, http.StatusBadRequest},
		{"form content type", "application/x-www-form-urlencoded", good, http.StatusUnsupportedMediaType},
		{"text content type", "text/plain", good, http.StatusUnsupportedMediaType},
		{"no content type", "", good, http.StatusUnsupportedMediaType},
	}
	before := snapshot(t, w.tn)
	for _, c := range cases {
		resp := w.env.Do(http.MethodPost, w.tn.Issuer+"/v1/tasks", c.contentType, w.orch, []byte(c.body))
		id := requireRefusal(t, resp, c.status)
		requireTrace(t, w.tn, w.orch, id, oauth.CheckFormat)

		// The same on an unauthenticated endpoint: the challenge.
		resp = w.env.Do(http.MethodPost, w.tn.Issuer+"/v1/agents/challenge", c.contentType, "", []byte(c.body))
		id = requireRefusal(t, resp, c.status)
		requireStored(t, w.tn, id, oauth.CheckFormat)
	}
	requireUnchanged(t, w.tn, before)
	// The well-formed body is accepted.
	resp := w.env.Do(http.MethodPost, w.tn.Issuer+"/v1/tasks", "application/json", w.orch, []byte(good))
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
}

func TestMalformedTokenRequestsRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	assertion := w.agent.Assertion() // valid throughout, and never consumed by a refusal
	good := firstExchange(assertion)
	with := func(k string, v ...string) string {
		f := url.Values{}
		for key, vals := range good {
			f[key] = vals
		}
		f[k] = append(f[k], v...)
		return f.Encode()
	}
	cases := []struct {
		name, contentType, body, code string
	}{
		{"JSON body", "application/json", `{"grant_type":"` + oauth.GrantTokenExchange + `"}`, oauth.ErrInvalidRequest},
		{"no content type", "", good.Encode(), oauth.ErrInvalidRequest},
		{"multipart", "multipart/form-data; boundary=x", good.Encode(), oauth.ErrInvalidRequest},
		{"bad form encoding", "application/x-www-form-urlencoded", good.Encode() + "&scope=%zz", oauth.ErrInvalidRequest},
		{"unknown parameter", "application/x-www-form-urlencoded", with("password", "hunter2"), oauth.ErrInvalidRequest},
		{"client_secret", "application/x-www-form-urlencoded", with("client_secret", "s"), oauth.ErrInvalidRequest},
		{"repeated subject_token", "application/x-www-form-urlencoded", with("subject_token", assertion), oauth.ErrInvalidRequest},
		{"repeated scope", "application/x-www-form-urlencoded", with("scope", "kb:read", "tickets:read"), oauth.ErrInvalidRequest},
		{"repeated grant_type", "application/x-www-form-urlencoded", with("grant_type", oauth.GrantClientCredentials), oauth.ErrInvalidRequest},
		{"no grant_type", "application/x-www-form-urlencoded", "subject_token=" + url.QueryEscape(assertion), oauth.ErrInvalidRequest},
		{"empty body", "application/x-www-form-urlencoded", "", oauth.ErrInvalidRequest},
		{"grant password", "application/x-www-form-urlencoded", "grant_type=password", oauth.ErrUnsupportedGrantType},
		{"grant authorization_code", "application/x-www-form-urlencoded", "grant_type=authorization_code", oauth.ErrUnsupportedGrantType},
		{"grant jwt-bearer", "application/x-www-form-urlencoded", "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer"), oauth.ErrUnsupportedGrantType},
		{"grant with a NUL", "application/x-www-form-urlencoded", "grant_type=a%00b", oauth.ErrUnsupportedGrantType},
		{"grant of invalid UTF-8", "application/x-www-form-urlencoded", "grant_type=" + strings.Repeat("a", 63) + "%C3%A9", oauth.ErrUnsupportedGrantType},
		{"unknown parameter with a NUL", "application/x-www-form-urlencoded", with("x\x00y", "1"), oauth.ErrInvalidRequest},
	}
	before := snapshot(t, w.tn)
	for _, c := range cases {
		t.Logf("case %s", c.name)
		resp := w.env.Do(http.MethodPost, w.tn.TokenURL, c.contentType, "", []byte(c.body))
		id := requireOAuthError(t, resp, http.StatusBadRequest, c.code, assertion)
		requireStored(t, w.tn, id, oauth.CheckFormat)
	}
	requireUnchanged(t, w.tn, before)
	// The assertion every refusal carried is still good.
	accessTokenOf(t, w.token(good))
}

func TestMalformedJWTsLeaveTraces(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := time.Now()
	claims := assertionClaims(w.agent.SPIFFEID, w.tn.TokenURL, now)
	format, signature := oauth.CheckFormat, oauth.CheckSignature
	bad := []struct {
		jwt                string
		agentCheck, client oauth.Check
	}{
		{"", format, format},
		{"not-a-jwt", format, format},
		{"a.b", format, format},
		{"a.b.c.d.e", format, format},
		{unsignedJWT(t, map[string]any{"alg": "\u0000"}, claims), format, format},
		{unsignedJWT(t, map[string]any{"alg": "EdDSA"}, claims), signature, format}, // an agent's, without a signature
		{strings.Repeat("A", oauth.MaxJWTBytes+1), format, format},
		{chittest.SignJWT(w.agent.Key, map[string]any{"iss": "x\u0000y", "sub": "x\u0000y", "aud": w.tn.TokenURL,
			"jti": uuid.NewString(), "exp": now.Add(20 * time.Second).Unix()}), format, format},
		{w.agent.Assertion()[:40], format, format},
	}
	before := snapshot(t, w.tn)
	for i, c := range bad {
		t.Logf("malformed JWT %d", i)
		resp := w.token(firstExchange(c.jwt))
		id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest)
		requireStored(t, w.tn, id, c.agentCheck)

		resp = w.token(clientCredentials(w.tn, c.jwt))
		id = requireOAuthError(t, resp, http.StatusUnauthorized, oauth.ErrInvalidClient)
		requireStored(t, w.tn, id, c.client)
	}
	requireUnchanged(t, w.tn, before)
}

// 9. The renewal cap.

func TestRenewalCapRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	one := 1
	w.update(t, tenants.SettingsChange{MaxRenewals: &one})

	first := w.agent.Exchange("")
	renewed := w.agent.Renew("")
	requireActive(t, w.tn, false, first)

	before := snapshot(t, w.tn)
	resp := w.token(w.agent.RenewForm(""))
	id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest, renewed)
	requireUnchanged(t, w.tn, before)
	trace := requireTrace(t, w.tn, renewed, id, oauth.CheckRenewalCap, renewed)
	require.Equal(t, "at most 2", trace["expected"])
	requireTrace(t, w.tn, w.orch, id, oauth.CheckRenewalCap)
	requireActive(t, w.tn, true, renewed) // a refused renewal revokes nothing

	// A fresh first exchange counts toward the same cap.
	resp = w.token(w.agent.ExchangeForm(""))
	id = requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrInvalidRequest)
	requireTrace(t, w.tn, renewed, id, oauth.CheckRenewalCap)
	requireUnchanged(t, w.tn, before)
}

// 10. Introspection and RFC 7009 revocation by the wrong client.

func TestIntrospectionByOrchestratorRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.agent.Exchange("")

	form := w.tn.ClientAssertionForm(w.tn.Orchestrator)
	form.Set("token", tok)
	before := snapshot(t, w.tn)
	resp := w.tn.PostForm("/oauth2/introspect", form)
	id := requireOAuthError(t, resp, http.StatusForbidden, oauth.ErrUnauthorizedClient, tok)
	require.NotContains(t, string(resp.Body), `"active"`)
	requireUnchanged(t, w.tn, before)
	requireTrace(t, w.tn, w.orch, id, oauth.CheckPolicy, tok)

	// Its bearer token does not make it a resource server either; nor does an agent's.
	introspectAs := func(bearer string) *chittest.Response {
		return w.env.Do(http.MethodPost, w.tn.Issuer+"/oauth2/introspect", "application/x-www-form-urlencoded", bearer,
			[]byte(url.Values{"token": {tok}}.Encode()))
	}
	resp = introspectAs(w.orch)
	id = requireOAuthError(t, resp, http.StatusForbidden, oauth.ErrUnauthorizedClient, tok)
	require.NotContains(t, string(resp.Body), `"active"`)
	requireTrace(t, w.tn, w.orch, id, oauth.CheckPolicy)
	resp = introspectAs(tok)
	id = requireOAuthError(t, resp, http.StatusUnauthorized, oauth.ErrInvalidClient, tok)
	require.NotContains(t, string(resp.Body), `"active"`)
	requireStored(t, w.tn, id, oauth.CheckPolicy)
	requireUnchanged(t, w.tn, before)
	requireActive(t, w.tn, true, tok)
}

func TestRevocationByAnotherOrchestratorRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.agent.Exchange("")
	other := w.tn.NewClient(oauth.KindOrchestrator)
	otherTok := w.tn.ClientToken(other)

	form := w.tn.ClientAssertionForm(other)
	form.Set("token", tok)
	before := snapshot(t, w.tn)
	resp := w.tn.PostForm("/oauth2/revoke", form)
	id := requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrUnauthorizedClient, tok)
	requireUnchanged(t, w.tn, before)
	requireTrace(t, w.tn, otherTok, id, oauth.CheckPolicy, tok)
	requireActive(t, w.tn, true, tok)

	// Nor may a resource server revoke it.
	form = w.tn.ClientAssertionForm(w.tn.Resource)
	form.Set("token", tok)
	resp = w.tn.PostForm("/oauth2/revoke", form)
	requireOAuthError(t, resp, http.StatusBadRequest, oauth.ErrUnauthorizedClient, tok)
	requireUnchanged(t, w.tn, before)
	requireActive(t, w.tn, true, tok)
}
