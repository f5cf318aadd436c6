// Package chittest runs a whole chit server against a fresh PostgreSQL
// database and drives it over real HTTP the way orchestrators, agents and
// resource servers do. End-to-end tests and the load client share it.
package chittest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/oauth/inventory"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
	"github.com/chitdev/chit/web"
)

// Env is a running chit with one database.
type Env struct {
	T       testing.TB
	DB      *pgstore.DB
	URL     string // the base URL issuers are built from
	Addr    string // where this server listens
	Tenants *tenants.Service
	OAuth   *oauth.Service
	Policy  *policy.Service
	Users   *users.Service
	// Inventory is the console's read model.
	Inventory *inventory.Service
	Server    *httptest.Server
	LogBuf    *LockedBuffer
	Clock     clock.Clock
	Keys      *keyring.Keyring
	HTTP      *http.Client
	KEKBytes  []byte
}

// Governor adapts the policy service for oauth.
type Governor = oauth.PolicyGovernor

// Start runs a server on 127.0.0.1 against a fresh database.
func Start(t testing.TB) *Env {
	t.Helper()
	db, _ := pgtest.Open(t)
	return StartOn(t, db)
}

// StartOn runs a server (a replica) on an existing database.
func StartOn(t testing.TB, db *pgstore.DB) *Env {
	t.Helper()
	return StartWith(t, db, Options{})
}

// Options change how a test server runs.
type Options struct {
	Clock        clock.Clock // default the system clock
	DenialBudget web.DenialBudget
	// BaseURL is the public URL issuers are built from; replicas share
	// one. Default: this server's own address.
	BaseURL string
}

// StartWith runs a server on db with opts.
func StartWith(t testing.TB, db *pgstore.DB, opts Options) *Env {
	t.Helper()
	ctx := context.Background()
	clk := opts.Clock
	if clk == nil {
		clk = clock.System
	}
	raw := bytes.Repeat([]byte{7}, keyring.KEKSize) // replicas of one test share the KEK
	kek, err := keyring.NewKEK(raw)
	require.NoError(t, err)
	keys := keyring.New(db, kek, clk)
	env := &Env{Keys: keys, T: t, DB: db, LogBuf: &LockedBuffer{}, HTTP: &http.Client{Timeout: 30 * time.Second}, KEKBytes: raw, Clock: clk}
	env.Tenants = tenants.NewService(db, keys, clk)
	env.Policy, err = policy.New(ctx, db, clk, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(env.Policy.Close)

	env.Server = httptest.NewUnstartedServer(nil)
	env.Addr = "http://" + env.Server.Listener.Addr().String()
	env.URL = env.Addr
	if opts.BaseURL != "" {
		env.URL = opts.BaseURL
	}
	env.OAuth = oauth.NewService(oauth.Config{DB: db, Keys: keys, Clock: clk, Policy: Governor{P: env.Policy},
		Logger: slog.New(slog.NewJSONHandler(env.LogBuf, nil)), BaseURL: env.URL})
	env.Users, err = users.New(users.Config{DB: db, Clock: clk, Roles: env.Policy})
	require.NoError(t, err)
	env.Inventory = inventory.New(db, clk)
	srv, err := web.New(web.Config{BaseURL: env.URL, Version: "test", DenialBudget: opts.DenialBudget}, web.Deps{
		OAuth: env.OAuth, Tenants: env.Tenants, Keys: keys, Logger: slog.New(slog.NewJSONHandler(env.LogBuf, nil)),
		Outstanding: env.OAuth.OutstandingIn(env.Tenants.List),
		Console: &web.ConsoleDeps{DB: db, Users: env.Users, Policy: env.Policy, Inventory: env.Inventory,
			Admin: env.Tenants, AllKeys: keys.All},
	})
	require.NoError(t, err)
	env.Server.Config.Handler = srv.Handler()
	env.Server.Start()
	t.Cleanup(env.Server.Close)
	return env
}

// Tenant is a tenant with an orchestrator and a resource server registered.
type Tenant struct {
	Env          *Env
	T            *tenants.Tenant
	Issuer       string
	TokenURL     string
	Orchestrator *Client
	Resource     *Client
}

// Client is a registered client and its private key.
type Client struct {
	ID   string
	Key  ed25519.PrivateKey
	Kind oauth.ClientKind
}

// NewTenant creates a tenant with an orchestrator allowed scopes and
// audiences, and a resource server.
func (e *Env) NewTenant(slug string, scopes, audiences []string) *Tenant {
	t := e.T
	t.Helper()
	ctx := context.Background()
	ten, err := e.Tenants.Create(ctx, tenants.CreateParams{Slug: slug, TrustDomain: slug + ".example"})
	require.NoError(t, err)
	tn := &Tenant{Env: e, T: ten, Issuer: e.URL + "/t/" + slug}
	tn.TokenURL = tn.Issuer + "/oauth2/token"
	tn.Orchestrator = tn.NewClient(oauth.KindOrchestrator)
	tn.Resource = tn.NewClient(oauth.KindResourceServer)
	if len(scopes) > 0 || len(audiences) > 0 {
		require.NoError(t, e.Policy.Grant(ctx, ten.ID, tn.Orchestrator.ID, scopes, audiences, "test"))
	}
	return tn
}

// NewClient registers a client of kind k with a fresh key.
func (tn *Tenant) NewClient(k oauth.ClientKind) *Client {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	c, err := tn.Env.OAuth.CreateClient(context.Background(), tn.T, k, string(k)+" under test", pub, "test")
	require.NoError(tn.Env.T, err)
	return &Client{ID: c.ID, Key: priv, Kind: k}
}

// SignJWT signs claims with key, EdDSA, as a compact JWS.
func SignJWT(key ed25519.PrivateKey, claims any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	return s
}

// Assertion is an RFC 7523 assertion of sub for aud, valid for life.
func Assertion(key ed25519.PrivateKey, sub, aud string, life time.Duration) string {
	now := time.Now()
	return SignJWT(key, jwt.Claims{Issuer: sub, Subject: sub, Audience: jwt.Audience{aud}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(life))})
}

// Response is an HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), string(r.Body))
}

// Map decodes the body as a JSON object.
func (r *Response) Map(t testing.TB) map[string]any {
	m := map[string]any{}
	r.JSON(t, &m)
	return m
}

// Do sends a request.
func (e *Env) Do(method, url, contentType, bearer string, body []byte) *Response {
	e.T.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(e.T, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.HTTP.Do(req)
	require.NoError(e.T, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.T, err)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// PostForm posts an OAuth form to path under the issuer.
func (tn *Tenant) PostForm(path string, form url.Values) *Response {
	return tn.Env.Do(http.MethodPost, tn.Issuer+path, "application/x-www-form-urlencoded", "", []byte(form.Encode()))
}

// PostJSON posts a JSON body to the API with a bearer token.
func (tn *Tenant) PostJSON(path, bearer string, body any) *Response {
	var data []byte
	if body != nil {
		var err error
		data, err = json.Marshal(body)
		require.NoError(tn.Env.T, err)
	}
	return tn.Env.Do(http.MethodPost, tn.Issuer+path, "application/json", bearer, data)
}

// ClientAssertionForm is the client authentication of c.
func (tn *Tenant) ClientAssertionForm(c *Client) url.Values {
	return url.Values{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {Assertion(c.Key, c.ID, tn.TokenURL, time.Minute)},
	}
}

// ClientToken gets c's own access token (client_credentials).
func (tn *Tenant) ClientToken(c *Client) string {
	t := tn.Env.T
	t.Helper()
	form := tn.ClientAssertionForm(c)
	form.Set("grant_type", "client_credentials")
	resp := tn.PostForm("/oauth2/token", form)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	resp.JSON(t, &tok)
	return tok.AccessToken
}

// CreateTask creates a task as the orchestrator.
func (tn *Tenant) CreateTask(orchToken, scope string, audiences []string) uuid.UUID {
	t := tn.Env.T
	t.Helper()
	resp := tn.PostJSON("/v1/tasks", orchToken, map[string]any{"principal": "user:alice", "purpose": "triage tickets",
		"scope": scope, "audiences": audiences, "ttl_seconds": 600})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var out struct {
		TaskID uuid.UUID `json:"task_id"`
	}
	resp.JSON(t, &out)
	return out.TaskID
}

// LaunchToken mints a launch token for the task (scope optional).
func (tn *Tenant) LaunchToken(orchToken string, task uuid.UUID, scope string) string {
	t := tn.Env.T
	t.Helper()
	var body any
	if scope != "" {
		body = map[string]string{"scope": scope}
	}
	resp := tn.PostJSON("/v1/tasks/"+task.String()+"/launch-tokens", orchToken, body)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var out struct {
		LaunchToken string `json:"launch_token"`
	}
	resp.JSON(t, &out)
	return out.LaunchToken
}

// Agent is a registered agent instance and its key.
type Agent struct {
	Tenant   *Tenant
	ID       uuid.UUID
	SPIFFEID string
	TaskID   uuid.UUID
	Scope    string
	Key      ed25519.PrivateKey
	Token    string
}

// PublicJWK is the JWK of an Ed25519 public key.
func PublicJWK(pub ed25519.PublicKey) json.RawMessage {
	data, err := jose.JSONWebKey{Key: pub}.MarshalJSON()
	if err != nil {
		panic(err)
	}
	return data
}

// Challenge asks for a registration challenge; returns the raw response.
func (tn *Tenant) Challenge(launch string, pub ed25519.PublicKey) *Response {
	return tn.PostJSON("/v1/agents/challenge", "", map[string]any{"launch_token": launch, "public_key": PublicJWK(pub)})
}

// Register runs challenge and register with a fresh key.
func (tn *Tenant) Register(launch string) *Agent {
	t := tn.Env.T
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	resp := tn.Challenge(launch, pub)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var ch struct {
		ChallengeID uuid.UUID `json:"challenge_id"`
		Nonce       string    `json:"nonce"`
	}
	resp.JSON(t, &ch)
	resp = tn.RegisterWith(ch.ChallengeID, ch.Nonce, priv)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	a := &Agent{Tenant: tn, Key: priv}
	var reg struct {
		AgentID  uuid.UUID `json:"agent_id"`
		SPIFFEID string    `json:"spiffe_id"`
		TaskID   uuid.UUID `json:"task_id"`
		Scope    string    `json:"scope"`
	}
	resp.JSON(t, &reg)
	a.ID, a.SPIFFEID, a.TaskID, a.Scope = reg.AgentID, reg.SPIFFEID, reg.TaskID, reg.Scope
	return a
}

// RegisterWith signs the nonce with key and registers.
func (tn *Tenant) RegisterWith(challengeID uuid.UUID, nonce string, key ed25519.PrivateKey) *Response {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	require.NoError(tn.Env.T, err)
	sig := ed25519.Sign(key, raw)
	return tn.PostJSON("/v1/agents/register", "", map[string]any{"challenge_id": challengeID,
		"signature": base64.RawURLEncoding.EncodeToString(sig)})
}

// Assertion is a fresh self-signed assertion of the agent.
func (a *Agent) Assertion() string {
	return Assertion(a.Key, a.SPIFFEID, a.Tenant.TokenURL, 30*time.Second)
}

// ExchangeForm is a first-exchange request.
func (a *Agent) ExchangeForm(scope string) url.Values {
	f := url.Values{
		"grant_type":         {oauth.GrantTokenExchange},
		"subject_token":      {a.Assertion()},
		"subject_token_type": {oauth.TokenTypeJWT},
	}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

// Exchange gets the agent its first token; fails the test on refusal.
func (a *Agent) Exchange(scope string) string {
	a.Tenant.Env.T.Helper()
	return a.token(a.ExchangeForm(scope))
}

// token posts form to the token endpoint and keeps the agent's new token.
func (a *Agent) token(form url.Values) string {
	t := a.Tenant.Env.T
	t.Helper()
	resp := a.Tenant.PostForm("/oauth2/token", form)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	resp.JSON(t, &tok)
	a.Token = tok.AccessToken
	return a.Token
}

// RenewForm is a renewal request of the agent's current token.
func (a *Agent) RenewForm(scope string) url.Values {
	f := url.Values{
		"grant_type":         {oauth.GrantTokenExchange},
		"subject_token":      {a.Token},
		"subject_token_type": {oauth.TokenTypeAccessToken},
		"actor_token":        {a.Assertion()},
		"actor_token_type":   {oauth.TokenTypeJWT},
	}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

// Renew renews the agent's token; fails the test on refusal.
func (a *Agent) Renew(scope string) string {
	a.Tenant.Env.T.Helper()
	return a.token(a.RenewForm(scope))
}

// Delegate asks for a sub-agent launch token with scope; returns the response.
func (a *Agent) Delegate(scope string) *Response {
	return a.Tenant.PostJSON("/v1/agents/"+a.ID.String()+"/launch-tokens", a.Token, map[string]string{"scope": scope})
}

// Introspect asks as the tenant's resource server.
func (tn *Tenant) Introspect(token string) map[string]any {
	t := tn.Env.T
	t.Helper()
	form := tn.ClientAssertionForm(tn.Resource)
	form.Set("token", token)
	resp := tn.PostForm("/oauth2/introspect", form)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	return resp.Map(t)
}

// Claims decodes a JWT's payload without verifying it.
func Claims(t testing.TB, token string) map[string]any {
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// Header decodes a JWT's header.
func Header(t testing.TB, token string) map[string]any {
	data, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	require.NoError(t, err)
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// DenialOf fetches a denial trace as the given bearer.
func (tn *Tenant) DenialOf(bearer, id string) *Response {
	return tn.Env.Do(http.MethodGet, tn.Issuer+"/v1/denials/"+id, "", bearer, nil)
}

// String describes the env, for logs.
func (e *Env) String() string { return fmt.Sprintf("chit at %s", e.URL) }

// LockedBuffer collects logs written from many goroutines.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
