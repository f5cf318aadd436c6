package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/chitdev/chit/oauth"
)

// api speaks chit's wire protocol (SPEC §4) for one tenant, over HTTP only.
type api struct {
	issuer string // where requests go: {base}/t/{tenant}
	// tokenURL is the audience of every assertion: the token endpoint the
	// tenant's metadata names (the server's --base-url may differ from the
	// address the demo reaches it at).
	tokenURL string
	http     *http.Client
}

// errServerUnreachable marks a failure to reach the server at all.
var errServerUnreachable = errors.New("chit does not answer")

// refusal is an answer other than the one asked for: chit's status and,
// for a recorded refusal, the denial id the console explains it under.
type refusal struct {
	Path     string
	Status   int
	Code     string // the OAuth error, or the problem's title
	Detail   string // "check: reason" on the API; the OAuth error_description
	DenialID string
}

func (r *refusal) Error() string {
	s := fmt.Sprintf("%s: %d %s", r.Path, r.Status, r.Code)
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	if r.DenialID != "" {
		s += " (denial " + r.DenialID + ")"
	}
	return s
}

// refusedWith reports whether err is chit refusing with status.
func refusedWith(err error, status int) (*refusal, bool) {
	var r *refusal
	if errors.As(err, &r) && r.Status == status {
		return r, true
	}
	return nil, false
}

// dial finds the tenant on a running server: it must answer its readiness
// check, and the tenant's metadata names the token endpoint.
func dial(ctx context.Context, baseURL, tenant string) (*api, error) {
	base := strings.TrimRight(baseURL, "/")
	a := &api{issuer: base + "/t/" + url.PathEscape(tenant),
		http: &http.Client{Timeout: 15 * time.Second}}
	if err := a.get(ctx, base+"/readyz", nil); err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return nil, fmt.Errorf("chit at %s is not ready (%d %s): are its migrations applied?", base, r.Status, r.Detail)
		}
		return nil, fmt.Errorf("%w at %s: start it with `make run` in another terminal (or set BASE_URL)", errServerUnreachable, base)
	}
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := a.get(ctx, a.issuer+"/.well-known/oauth-authorization-server", &meta); err != nil {
		if _, ok := refusedWith(err, http.StatusNotFound); ok {
			return nil, fmt.Errorf("chit at %s has no tenant %q: `make run` (chit serve --demo) creates the demo tenant on an empty database", base, tenant)
		}
		return nil, err
	}
	if meta.TokenEndpoint == "" {
		return nil, fmt.Errorf("the metadata of tenant %q names no token endpoint", tenant)
	}
	a.tokenURL = meta.TokenEndpoint
	return a, nil
}

// assertion is an RFC 7523 assertion of sub, signed with key, for the token endpoint.
func (a *api) assertion(key ed25519.PrivateKey, sub string, life time.Duration) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	return jwt.Signed(signer).Claims(jwt.Claims{Issuer: sub, Subject: sub, Audience: jwt.Audience{a.tokenURL},
		ID: uuid.NewString(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(life))}).Serialize()
}

// tokenAnswer is the token endpoint's answer.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// clientToken authenticates a client (private_key_jwt) and gets its own token.
func (a *api) clientToken(ctx context.Context, c registered) (tokenAnswer, error) {
	assertion, err := a.assertion(c.Key, c.ID, time.Minute)
	if err != nil {
		return tokenAnswer{}, err
	}
	var out tokenAnswer
	err = a.postForm(ctx, oauth.PathToken, url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion}}, &out)
	return out, err
}

// bearer is a client's own access token, fetched again before it expires.
type bearer struct {
	api    *api
	client registered
	mu     sync.Mutex
	token  string
	until  time.Time
}

func (b *bearer) get(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.token != "" && time.Now().Before(b.until) {
		return b.token, nil
	}
	tok, err := b.api.clientToken(ctx, b.client)
	if err != nil {
		return "", fmt.Errorf("authenticate %s: %w", b.client.Name, err)
	}
	// Fetch a new one well before expiry: a request in flight must not carry a token that lapses.
	b.token, b.until = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second*2/3)
	return b.token, nil
}

// agentIdentity is a registered agent as the agent itself knows it.
type agentIdentity struct {
	ID       string `json:"agent_id"`
	SPIFFEID string `json:"spiffe_id"`
	TaskID   string `json:"task_id"`
	Scope    string `json:"scope"`
	key      ed25519.PrivateKey
}

// register spawns an agent: a key pair of its own, the challenge that
// consumes the launch token, and the signed nonce.
func (a *api) register(ctx context.Context, launchToken string) (*agentIdentity, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ch, err := a.challenge(ctx, launchToken, pub)
	if err != nil {
		return nil, err
	}
	nonce, err := base64.RawURLEncoding.DecodeString(ch.Nonce)
	if err != nil {
		return nil, fmt.Errorf("challenge nonce is not base64url")
	}
	id := &agentIdentity{key: priv}
	err = a.postJSON(ctx, "/v1/agents/register", "", map[string]string{"challenge_id": ch.ChallengeID,
		"signature": base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, nonce))}, id)
	return id, err
}

type challengeAnswer struct {
	ChallengeID string `json:"challenge_id"`
	Nonce       string `json:"nonce"`
}

func (a *api) challenge(ctx context.Context, launchToken string, pub ed25519.PublicKey) (challengeAnswer, error) {
	jwk, err := jose.JSONWebKey{Key: pub}.MarshalJSON()
	if err != nil {
		return challengeAnswer{}, err
	}
	var ch challengeAnswer
	err = a.postJSON(ctx, "/v1/agents/challenge", "", map[string]any{"launch_token": launchToken, "public_key": json.RawMessage(jwk)}, &ch)
	return ch, err
}

// exchange is an agent's first token (RFC 8693, its own assertion as the subject).
func (a *api) exchange(ctx context.Context, id *agentIdentity, scope string) (tokenAnswer, error) {
	assertion, err := a.assertion(id.key, id.SPIFFEID, 30*time.Second)
	if err != nil {
		return tokenAnswer{}, err
	}
	form := url.Values{"grant_type": {oauth.GrantTokenExchange}, "subject_token": {assertion},
		"subject_token_type": {oauth.TokenTypeJWT}}
	if scope != "" {
		form.Set("scope", scope)
	}
	var out tokenAnswer
	err = a.postForm(ctx, oauth.PathToken, form, &out)
	return out, err
}

// renew exchanges the agent's current token for a new one (same or narrower scope).
func (a *api) renew(ctx context.Context, id *agentIdentity, current, scope string) (tokenAnswer, error) {
	assertion, err := a.assertion(id.key, id.SPIFFEID, 30*time.Second)
	if err != nil {
		return tokenAnswer{}, err
	}
	form := url.Values{"grant_type": {oauth.GrantTokenExchange}, "subject_token": {current},
		"subject_token_type": {oauth.TokenTypeAccessToken}, "actor_token": {assertion}, "actor_token_type": {oauth.TokenTypeJWT}}
	if scope != "" {
		form.Set("scope", scope)
	}
	var out tokenAnswer
	err = a.postForm(ctx, oauth.PathToken, form, &out)
	return out, err
}

// introspect asks, as a resource server with its own token, whether token is live.
func (a *api) introspect(ctx context.Context, rsToken, token string) (bool, error) {
	var out struct {
		Active bool `json:"active"`
	}
	err := a.post(ctx, oauth.PathIntrospect, "application/x-www-form-urlencoded", rsToken,
		[]byte(url.Values{"token": {token}}.Encode()), &out)
	return out.Active, err
}

type launchAnswer struct {
	LaunchToken string `json:"launch_token"`
}

// scopeBody is an optional {scope}; nil sends no body ("no narrowing").
func scopeBody(scope string) any {
	if scope == "" {
		return nil
	}
	return map[string]string{"scope": scope}
}

func (a *api) taskLaunchToken(ctx context.Context, orchToken, taskID, scope string) (string, error) {
	var out launchAnswer
	err := a.postJSON(ctx, "/v1/tasks/"+taskID+"/launch-tokens", orchToken, scopeBody(scope), &out)
	return out.LaunchToken, err
}

func (a *api) subAgentLaunchToken(ctx context.Context, agentToken, agentID, scope string) (string, error) {
	var out launchAnswer
	err := a.postJSON(ctx, "/v1/agents/"+agentID+"/launch-tokens", agentToken, scopeBody(scope), &out)
	return out.LaunchToken, err
}

func (a *api) heartbeat(ctx context.Context, agentToken, agentID string) error {
	return a.postJSON(ctx, "/v1/agents/"+agentID+"/heartbeat", agentToken, nil, nil)
}

type revocationAnswer struct {
	RevocationID string `json:"revocation_id"`
	Count        int    `json:"revoked_count"`
}

func (a *api) revoke(ctx context.Context, orchToken, level, target, reason string) (revocationAnswer, error) {
	var out revocationAnswer
	err := a.postJSON(ctx, "/v1/revocations", orchToken, map[string]string{"level": level, "target": target, "reason": reason}, &out)
	return out, err
}

func (a *api) completeTask(ctx context.Context, token, taskID string) error {
	return a.postJSON(ctx, "/v1/tasks/"+taskID+"/complete", token, nil, nil)
}

func (a *api) postJSON(ctx context.Context, path, bearer string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	return a.post(ctx, path, "application/json", bearer, data, out)
}

func (a *api) postForm(ctx context.Context, path string, form url.Values, out any) error {
	return a.post(ctx, path, "application/x-www-form-urlencoded", "", []byte(form.Encode()), out)
}

func (a *api) post(ctx context.Context, path, contentType, bearer string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.issuer+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return a.do(req, path, out)
}

func (a *api) get(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return a.do(req, strings.TrimPrefix(u, a.issuer), out)
}

// do sends req; any 2xx is success and its body is decoded into out.
// Anything else becomes a *refusal carrying chit's own explanation, which
// never holds a token.
func (a *api) do(req *http.Request, path string, out any) error {
	resp, err := a.http.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return req.Context().Err()
		}
		// The error names the URL and the network failure, never the body.
		return fmt.Errorf("%w: %v", errServerUnreachable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Title            string `json:"title"`
			Detail           string `json:"detail"`
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
			DenialID         string `json:"denial_id"`
		}
		_ = json.Unmarshal(data, &p)
		r := &refusal{Path: path, Status: resp.StatusCode, Code: p.Title, Detail: p.Detail, DenialID: p.DenialID}
		if p.Error != "" {
			r.Code, r.Detail = p.Error, p.ErrorDescription
		}
		return r
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: unreadable answer: %w", path, err)
		}
	}
	return nil
}
