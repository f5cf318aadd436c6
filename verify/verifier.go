package verify

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrStale: the revocation feed has not been read for too long, so a
// revoked token could pass; Verify refuses everything until it catches up.
var ErrStale = errors.New("verify: the revocation feed is stale")

// Skew is the clock skew tolerated on exp and nbf.
const Skew = 30 * time.Second

// Config describes the tenant to trust and how this resource server reads
// its revocation feed (as a chit client of kind resource-server).
type Config struct {
	Issuer   string             // the tenant's issuer, e.g. https://chit.example/t/acme
	Audience string             // this server's audience; empty accepts any
	ClientID string             // this resource server's client_id
	Key      ed25519.PrivateKey // its private key, for private_key_jwt

	HTTPClient   *http.Client     // default: 10 s timeout
	PollInterval time.Duration    // how often the feed is read; default 250 ms
	MaxStaleness time.Duration    // refuse everything when the feed is older; default 10 s
	CacheSize    int              // verified tokens kept; default 100,000
	Now          func() time.Time // default time.Now
}

// Verifier validates tokens of one tenant. Safe for concurrent use.
type Verifier struct {
	cfg  Config
	http *http.Client

	mu        sync.RWMutex
	keys      map[string]ed25519.PublicKey
	keysAt    time.Time
	revoked   map[string]time.Time // "jti:…", "agent:…", "task:…" → when revoked
	cursor    string
	fresh     time.Time // last successful feed read
	cache     *Cache
	feedToken string
	feedExp   time.Time

	stop chan struct{}
	done chan struct{}
}

// New fetches the tenant's keys, reads its revocation feed from the start
// and keeps following it until Close.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("verify: Issuer, ClientID and an Ed25519 Key are required")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.MaxStaleness <= 0 {
		cfg.MaxStaleness = 10 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, http: cfg.HTTPClient, revoked: map[string]time.Time{}, cache: NewCache(cfg.CacheSize),
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := v.refreshKeys(ctx); err != nil {
		return nil, err
	}
	for {
		n, err := v.poll(ctx)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	go v.follow()
	return v, nil
}

// Close stops following the feed.
func (v *Verifier) Close() {
	close(v.stop)
	<-v.done
}

// Verify validates raw fully and returns its claims: signature, typ,
// issuer, audience, expiry with skew, every scope in scopes, and revocation
// of the token, its agent, its task and every delegator.
func (v *Verifier) Verify(raw string, scopes ...string) (*Claims, error) {
	now := v.cfg.Now()
	v.mu.RLock()
	stale := now.Sub(v.fresh) > v.cfg.MaxStaleness
	v.mu.RUnlock()
	c := v.cache.Get(raw)
	if stale {
		return nil, ErrStale
	}
	if c == nil {
		var err error
		if c, err = v.verifyNew(raw); err != nil {
			return nil, err
		}
	}
	switch {
	case now.Unix() > c.Expiry+int64(Skew/time.Second):
		return nil, ErrExpired
	case c.NotBefore > now.Unix()+int64(Skew/time.Second):
		return nil, ErrNotYet
	}
	for _, s := range scopes {
		if !c.HasScope(s) {
			return nil, fmt.Errorf("%w: %s", ErrScope, s)
		}
	}
	if v.isRevoked(c) {
		return nil, ErrRevoked
	}
	return c, nil
}

// verifyNew checks a token not seen before and caches it.
func (v *Verifier) verifyNew(raw string) (*Claims, error) {
	c, err := Parse(raw, v.key)
	if errors.Is(err, ErrSignature) && v.maybeRefreshKeys() {
		c, err = Parse(raw, v.key) // a key rotated since the last fetch
	}
	if err != nil {
		return nil, err
	}
	if c.Issuer != v.cfg.Issuer {
		return nil, ErrIssuer
	}
	if v.cfg.Audience != "" && !contains(c.Audience, v.cfg.Audience) {
		return nil, ErrAudience
	}
	v.cache.Put(raw, c)
	return c, nil
}

func (v *Verifier) isRevoked(c *Claims) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if _, ok := v.revoked["jti:"+c.ID]; ok {
		return true
	}
	if c.TaskID != "" {
		if _, ok := v.revoked["task:"+c.TaskID]; ok {
			return true
		}
	}
	for _, id := range c.Lineage() {
		if _, ok := v.revoked["agent:"+id]; ok {
			return true
		}
	}
	return false
}

func (v *Verifier) key(kid string) ed25519.PublicKey {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.keys[kid]
}

// maybeRefreshKeys refetches the JWKS at most once a second.
func (v *Verifier) maybeRefreshKeys() bool {
	v.mu.RLock()
	recent := v.cfg.Now().Sub(v.keysAt) < time.Second
	v.mu.RUnlock()
	if recent {
		return false
	}
	return v.refreshKeys(context.Background()) == nil
}

func (v *Verifier) refreshKeys(ctx context.Context) error {
	var set struct {
		Keys []struct {
			Kty, Crv, X, Kid, Alg string
		} `json:"keys"`
	}
	if err := v.get(ctx, v.cfg.Issuer+"/jwks.json", "", &set); err != nil {
		return fmt.Errorf("verify: fetch JWKS: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.Kid] = x
	}
	v.mu.Lock()
	v.keys, v.keysAt = keys, v.cfg.Now()
	v.mu.Unlock()
	return nil
}

func (v *Verifier) follow() {
	defer close(v.done)
	t := time.NewTicker(v.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
			for {
				n, err := v.poll(context.Background())
				if err != nil || n == 0 {
					break
				}
			}
		}
	}
}

// poll reads one page of the feed after the cursor; it returns how many
// revocations it read.
func (v *Verifier) poll(ctx context.Context) (int, error) {
	token, err := v.clientToken(ctx)
	if err != nil {
		return 0, err
	}
	var page struct {
		Revocations []struct {
			Level, Target string
			TaskID        *string   `json:"task_id"`
			RevokedAt     time.Time `json:"revoked_at"`
		} `json:"revocations"`
		NextCursor string `json:"next_cursor"`
	}
	v.mu.RLock()
	cursor := v.cursor
	v.mu.RUnlock()
	if err := v.get(ctx, v.cfg.Issuer+"/v1/revocations?after="+url.QueryEscape(cursor), token, &page); err != nil {
		return 0, err
	}
	now := v.cfg.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range page.Revocations {
		switch r.Level {
		case "token":
			v.revoked["jti:"+r.Target] = r.RevokedAt
		case "agent", "chain":
			v.revoked["agent:"+r.Target] = r.RevokedAt
		case "task":
			v.revoked["task:"+r.Target] = r.RevokedAt
		}
	}
	// Entries outlive every credential they could concern (tasks live at
	// most 7 days), then go.
	for k, at := range v.revoked {
		if now.Sub(at) > 8*24*time.Hour {
			delete(v.revoked, k)
		}
	}
	v.cursor, v.fresh = page.NextCursor, now
	return len(page.Revocations), nil
}

// clientToken is this resource server's own token for the feed, from
// client_credentials with a private_key_jwt assertion; renewed before expiry.
func (v *Verifier) clientToken(ctx context.Context) (string, error) {
	v.mu.RLock()
	tok, exp := v.feedToken, v.feedExp
	v.mu.RUnlock()
	now := v.cfg.Now()
	if tok != "" && now.Add(30*time.Second).Before(exp) {
		return tok, nil
	}
	tokenURL := v.cfg.Issuer + "/oauth2/token"
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	claims, _ := json.Marshal(map[string]any{"iss": v.cfg.ClientID, "sub": v.cfg.ClientID, "aud": tokenURL,
		"jti": hex.EncodeToString(jti), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	signing := b64.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`)) + "." + b64.EncodeToString(claims)
	assertion := signing + "." + b64.EncodeToString(ed25519.Sign(v.cfg.Key, []byte(signing)))
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion": {assertion},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := v.do(req, &out); err != nil {
		return "", fmt.Errorf("verify: client token: %w", err)
	}
	v.mu.Lock()
	v.feedToken, v.feedExp = out.AccessToken, now.Add(time.Duration(out.ExpiresIn)*time.Second)
	v.mu.Unlock()
	return out.AccessToken, nil
}

func (v *Verifier) get(ctx context.Context, u, bearer string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return v.do(req, out)
}

func (v *Verifier) do(req *http.Request, out any) error {
	resp, err := v.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	return json.Unmarshal(body, out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
