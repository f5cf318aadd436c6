package oauth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/verify"
)

// This file is the one place chit parses, verifies and signs JWTs. Only
// EdDSA is accepted: `none`, HS256 (with a public key as the secret) and
// every other algorithm fail at parse time.

// Skew is the clock skew tolerated on exp, nbf and iat.
const Skew = 30 * time.Second

// MaxJWTBytes bounds a JWT before any parsing.
const MaxJWTBytes = 8 << 10

// TokenType is the JOSE `typ` of chit access tokens (RFC 9068).
const TokenType = "at+jwt"

var allowedAlgs = []jose.SignatureAlgorithm{jose.EdDSA}

// Assertion is a parsed, not yet verified, RFC 7523 assertion.
type Assertion struct {
	tok        *jwt.JSONWebToken
	unverified jwt.Claims
}

// ParseAssertion parses a compact EdDSA JWS and reads its claims without
// verifying them, so the caller can find the key of its subject.
func ParseAssertion(raw string) (*Assertion, *Denial) {
	if len(raw) == 0 || len(raw) > MaxJWTBytes {
		return nil, deny(CheckFormat, "assertion is empty or too long")
	}
	tok, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return nil, deny(CheckFormat, "assertion is not a compact JWS signed with EdDSA").with("EdDSA JWS", algOf(raw))
	}
	a := &Assertion{tok: tok}
	if err := tok.UnsafeClaimsWithoutVerification(&a.unverified); err != nil {
		return nil, deny(CheckFormat, "assertion claims are not valid JSON claims")
	}
	if a.unverified.Subject == "" || a.unverified.Issuer != a.unverified.Subject {
		return nil, deny(CheckFormat, "assertion iss and sub must be equal and present")
	}
	return a, nil
}

// Subject is the unverified `sub`: only for finding the key.
func (a *Assertion) Subject() string { return a.unverified.Subject }

// VerifiedAssertion holds an assertion's claims after Verify.
type VerifiedAssertion struct {
	Subject string
	ID      string
	Expiry  time.Time
}

// Verify checks the signature with pub, then `aud` (one of audiences),
// `exp` (present, not past, at most maxLife ahead), `nbf`/`iat` with skew,
// and that `jti` is present. Single use is the caller's next step.
func (a *Assertion) Verify(pub ed25519.PublicKey, audiences []string, now time.Time, maxLife time.Duration) (*VerifiedAssertion, *Denial) {
	var c jwt.Claims
	if err := a.tok.Claims(pub, &c); err != nil {
		return nil, deny(CheckSignature, "assertion signature does not verify with the registered key")
	}
	if c.Expiry == nil || c.ID == "" {
		return nil, deny(CheckFormat, "assertion must carry exp and jti")
	}
	exp := c.Expiry.Time()
	if now.After(exp.Add(Skew)) {
		return nil, deny(CheckExpired, "assertion has expired").with("exp after "+now.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339))
	}
	if exp.Sub(now) > maxLife+Skew {
		return nil, deny(CheckFormat, "assertion lives too long").with("exp at most "+maxLife.String()+" ahead", exp.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && c.NotBefore.Time().After(now.Add(Skew)) {
		return nil, deny(CheckFormat, "assertion is not valid yet")
	}
	if c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(Skew)) {
		return nil, deny(CheckFormat, "assertion was issued in the future")
	}
	if !anyIn(c.Audience, audiences) {
		return nil, deny(CheckAudience, "assertion audience is not this token endpoint").with(strings.Join(audiences, " "), strings.Join(c.Audience, " ")).asFormat()
	}
	if len(c.ID) > 256 {
		return nil, deny(CheckFormat, "assertion jti is too long")
	}
	return &VerifiedAssertion{Subject: c.Subject, ID: c.ID, Expiry: exp}, nil
}

// asFormat keeps an assertion's wrong audience an invalid_request (the
// assertion is invalid), not invalid_target (which is about the token asked for).
func (d *Denial) asFormat() *Denial {
	d.OAuthError = ErrInvalidRequest
	return d
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// AccessClaims are the claims of a chit access token (RFC 9068 + RFC 8693),
// the verify package's type: the issuer signs exactly what verifiers decode.
type AccessClaims = verify.Claims

// jtiOf parses a token's id.
func jtiOf(c *AccessClaims) uuid.UUID {
	id, _ := uuid.Parse(c.ID)
	return id
}

var b64 = base64.RawURLEncoding

// headers caches the encoded JOSE header per kid: it never changes.
var headers sync.Map // kid → string

func headerFor(kid string) string {
	if h, ok := headers.Load(kid); ok {
		return h.(string)
	}
	raw, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{keyring.Algorithm, kid, TokenType})
	h := b64.EncodeToString(raw)
	headers.Store(kid, h)
	return h
}

// SignAccessToken signs c as a compact JWS with the tenant key.
func SignAccessToken(signer *keyring.Signer, c *AccessClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	hdr := headerFor(signer.KeyID())
	buf := make([]byte, 0, len(hdr)+2+b64.EncodedLen(len(payload))+b64.EncodedLen(ed25519.SignatureSize))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	sig := signer.SignMessage(buf)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

// KeyLookup returns a tenant's published key by kid, or nil.
type KeyLookup func(kid string) ed25519.PublicKey

// VerifyAccessToken checks a chit access token's signature, `typ`, issuer
// and time claims (with skew). Revocation is the caller's next step.
func VerifyAccessToken(raw string, keys KeyLookup, issuer string, now time.Time) (*AccessClaims, *Denial) {
	c, d := verifyAccessTokenSignature(raw, keys, issuer)
	if d != nil {
		return nil, d
	}
	if d := checkAccessTimes(c, now); d != nil {
		return nil, d
	}
	return c, nil
}

// checkAccessTimes checks expiry and not-before, with the skew.
func checkAccessTimes(c *AccessClaims, now time.Time) *Denial {
	if now.Unix() > c.Expiry+int64(Skew/time.Second) {
		return deny(CheckExpired, "token has expired").with("exp after "+now.UTC().Format(time.RFC3339), time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	if c.NotBefore > now.Unix()+int64(Skew/time.Second) {
		return deny(CheckFormat, "token is not valid yet")
	}
	return nil
}

// verifyAccessTokenSignature checks everything but time: revoking an
// expired token is allowed and harmless.
func verifyAccessTokenSignature(raw string, keys KeyLookup, issuer string) (*AccessClaims, *Denial) {
	if len(raw) == 0 || len(raw) > MaxJWTBytes {
		return nil, deny(CheckFormat, "token is empty or too long")
	}
	// The verify package's parser is the one resource servers run too.
	var kid string
	known := false
	c, err := verify.Parse(raw, func(k string) ed25519.PublicKey {
		kid = k
		pub := keys(k)
		known = pub != nil
		return pub
	})
	switch {
	case errors.Is(err, verify.ErrMalformed):
		return nil, deny(CheckFormat, "token is not a compact EdDSA access token (typ at+jwt)").with("EdDSA at+jwt", algOf(raw))
	case err != nil && !known:
		if iss := unverifiedIssuer(payloadOf(raw)); iss != "" && iss != issuer {
			// Another tenant's token (or one claiming to be): say so, from
			// what the token itself claims and nothing this tenant stores.
			return nil, deny(CheckTenant, "token was issued by another issuer").with(issuer, iss)
		}
		// A key long retired, or a forgery.
		return nil, deny(CheckSignature, "token was not signed by a key of this tenant").with("a kid of this tenant's JWKS", kid)
	case err != nil:
		return nil, deny(CheckSignature, "token signature does not verify")
	}
	if c.Issuer != issuer {
		return nil, deny(CheckTenant, "token was issued by another issuer").with(issuer, c.Issuer)
	}
	if _, err := uuid.Parse(c.ID); err != nil {
		return nil, deny(CheckFormat, "token has no valid jti")
	}
	return c, nil
}

// payloadOf decodes a compact JWS's payload without verifying it, for a
// denial trace only.
func payloadOf(raw string) []byte {
	parts := strings.SplitN(raw, ".", 3)
	if len(parts) != 3 {
		return nil
	}
	data, _ := b64.DecodeString(parts[1])
	return data
}

// unverifiedIssuer reads `iss` from an unverified payload, for a denial trace only.
func unverifiedIssuer(payload []byte) string {
	var c struct {
		Issuer string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.Issuer
}

// algOf reads the `alg` of a JWS header for a denial trace, without trusting it.
func algOf(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || len(head) > 512 {
		return "unparsable"
	}
	data, err := b64.DecodeString(head)
	if err != nil {
		return "unparsable"
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(data, &h) != nil || len(h.Alg) > 16 {
		return "unparsable"
	}
	return "alg=" + h.Alg
}
