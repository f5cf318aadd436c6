// Package verify lets a resource server validate chit access tokens
// locally: it keeps the tenant's JWKS (rotation-aware), follows the tenant's
// revocation feed, and checks signature, typ, issuer, audience, expiry (30 s
// skew), scope and revocation of the token, its agent, its task and every
// ancestor in its delegation lineage. A token seen before is answered from
// a cache in microseconds, its revocation state still checked on every call.
//
// It depends on the standard library only.
package verify

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
)

// Errors a validation returns; wrap-checkable with errors.Is.
var (
	ErrMalformed = errors.New("verify: token is not a compact EdDSA at+jwt")
	ErrSignature = errors.New("verify: token signature does not verify with the tenant's keys")
	ErrIssuer    = errors.New("verify: token was issued by another issuer")
	ErrAudience  = errors.New("verify: token is not for this audience")
	ErrExpired   = errors.New("verify: token has expired")
	ErrNotYet    = errors.New("verify: token is not valid yet")
	ErrScope     = errors.New("verify: token lacks a required scope")
	ErrRevoked   = errors.New("verify: token, its agent, its task or a delegator was revoked")
)

// Actor is one level of the nested `act` claim: the presenting agent
// outermost, each delegator inside it.
type Actor struct {
	Sub string `json:"sub"`
	Act *Actor `json:"act,omitempty"`
}

// Chain lists the actors, presenting agent first.
func (a *Actor) Chain() []string {
	var out []string
	for cur := a; cur != nil; cur = cur.Act {
		out = append(out, cur.Sub)
	}
	return out
}

// Claims are a chit access token's claims (RFC 9068 + RFC 8693).
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	Act       *Actor   `json:"act,omitempty"`
	TaskID    string   `json:"task_id,omitempty"`
	AgentID   string   `json:"agent_id,omitempty"`
}

// HasScope reports whether the token's scope holds s.
func (c *Claims) HasScope(s string) bool {
	for _, tok := range strings.Fields(c.Scope) {
		if tok == s {
			return true
		}
	}
	return false
}

// Lineage lists the agent ids of the presenting agent and every delegator
// (from the SPIFFE IDs in `act`: spiffe://td/agent/{orch}/{task}/{agent}).
func (c *Claims) Lineage() []string {
	var ids []string
	for a := c.Act; a != nil; a = a.Act {
		if i := strings.LastIndexByte(a.Sub, '/'); i >= 0 {
			ids = append(ids, a.Sub[i+1:])
		}
	}
	return ids
}

// MaxTokenBytes bounds a token before any decoding.
const MaxTokenBytes = 8 << 10

var b64 = base64.RawURLEncoding

// Parse checks a token's form and signature — compact JWS, alg EdDSA and
// nothing else, typ at+jwt, a kid that key knows — and decodes its claims.
// It checks no time, issuer or audience: Verifier.Verify does.
func Parse(raw string, key func(kid string) ed25519.PublicKey) (*Claims, error) {
	if len(raw) == 0 || len(raw) > MaxTokenBytes {
		return nil, ErrMalformed
	}
	dot1 := strings.IndexByte(raw, '.')
	dot2 := strings.LastIndexByte(raw, '.')
	if dot1 <= 0 || dot2 <= dot1 || strings.IndexByte(raw[dot1+1:dot2], '.') >= 0 {
		return nil, ErrMalformed
	}
	kid, ok := headerKid(raw[:dot1])
	if !ok {
		return nil, ErrMalformed
	}
	sig, err := b64.DecodeString(raw[dot2+1:])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, ErrMalformed
	}
	pub := key(kid)
	if pub == nil || !ed25519.Verify(pub, []byte(raw[:dot2]), sig) {
		return nil, ErrSignature
	}
	payload, err := b64.DecodeString(raw[dot1+1 : dot2])
	if err != nil {
		return nil, ErrMalformed
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil || c.ID == "" {
		return nil, ErrMalformed
	}
	return &c, nil
}

// Headers repeat (one per signing key), so valid ones are remembered by
// their encoded form; a bounded number, so forged headers cannot grow it.
var (
	headerMu   sync.RWMutex
	headerKids = map[string]string{}
	maxHeaders = 64
)

// headerKid checks an encoded JOSE header (alg EdDSA, typ at+jwt, no crit)
// and returns its kid.
func headerKid(seg string) (string, bool) {
	headerMu.RLock()
	kid, ok := headerKids[seg]
	headerMu.RUnlock()
	if ok {
		return kid, true
	}
	head, err := b64.DecodeString(seg)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Typ  string          `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(head, &h); err != nil || h.Alg != "EdDSA" || h.Typ != "at+jwt" || h.Crit != nil {
		return "", false
	}
	headerMu.Lock()
	if len(headerKids) < maxHeaders {
		headerKids[seg] = h.Kid
	}
	headerMu.Unlock()
	return h.Kid, true
}
