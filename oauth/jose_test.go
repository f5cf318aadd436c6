package oauth

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The refusals of jose.go, one check each, with the key and clock fixed.

func agentClaims(mod func(map[string]any)) map[string]any {
	c := map[string]any{"iss": fuzzAgent, "sub": fuzzAgent, "aud": fuzzAud, "jti": "j-1",
		"iat": fuzzNow.Unix(), "exp": fuzzNow.Add(30 * time.Second).Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestAssertionChecks(t *testing.T) {
	t.Parallel()
	eddsa := map[string]any{"alg": "EdDSA", "typ": "JWT"}
	_, stranger, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 64)))
	cases := []struct {
		name  string
		raw   string
		check Check // "" when accepted
	}{
		{"valid", signCompact(fuzzKey, eddsa, agentClaims(nil)), ""},
		{"aud the issuer", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) { c["aud"] = fuzzIssuer })), ""},
		{"expired within the skew", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) {
			c["exp"] = fuzzNow.Add(-29 * time.Second).Unix()
		})), ""},
		{"expired beyond the skew", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) {
			c["exp"] = fuzzNow.Add(-31 * time.Second).Unix()
		})), CheckExpired},
		{"lives too long", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) {
			c["exp"] = fuzzNow.Add(AgentAssertionMaxLife + Skew + time.Second).Unix()
		})), CheckFormat},
		{"issued in the future", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) {
			c["iat"] = fuzzNow.Add(time.Minute).Unix()
		})), CheckFormat},
		{"no exp", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) { delete(c, "exp") })), CheckFormat},
		{"no jti", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) { delete(c, "jti") })), CheckFormat},
		{"iss differs from sub", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) { c["iss"] = "someone" })), CheckFormat},
		{"another audience", signCompact(fuzzKey, eddsa, agentClaims(func(c map[string]any) {
			c["aud"] = "https://chit.example/t/bravo/oauth2/token"
		})), CheckAudience},
		{"another key", signCompact(stranger, eddsa, agentClaims(nil)), CheckSignature},
		{"alg none", seg(map[string]any{"alg": "none"}) + "." + seg(agentClaims(nil)) + ".", CheckFormat},
		{"HS256 keyed with the public key", hmacCompact(fuzzPub, map[string]any{"alg": "HS256"}, agentClaims(nil)), CheckFormat},
		{"too long", strings.Repeat("A", MaxJWTBytes+1), CheckFormat},
	}
	for _, c := range cases {
		a, d := ParseAssertion(c.raw)
		if d == nil {
			var v *VerifiedAssertion
			v, d = a.Verify(fuzzPub, []string{fuzzAud, fuzzIssuer}, fuzzNow, AgentAssertionMaxLife)
			if c.check == "" {
				require.Nil(t, d, c.name)
				require.Equal(t, fuzzAgent, v.Subject, c.name)
				continue
			}
		}
		require.NotNil(t, d, c.name)
		require.Equal(t, c.check, d.Check, c.name)
		require.Equal(t, ErrInvalidRequest, d.OAuthError, "%s: a bad assertion is invalid_request", c.name)
	}
}

func TestAccessTokenChecks(t *testing.T) {
	t.Parallel()
	keys := func(kid string) ed25519.PublicKey {
		if kid == "k1" {
			return fuzzPub
		}
		return nil
	}
	seeds := accessSeeds()
	cases := []struct {
		name  string
		raw   string
		check Check
	}{
		{"valid", seeds[0], ""},
		{"another issuer, a known kid", seeds[1], CheckTenant},
		{"another tenant's token (kid unknown here)", seeds[2], CheckTenant},
		{"expired", seeds[3], CheckExpired},
		{"no uuid jti", seeds[4], CheckFormat},
		{"typ JWT", seeds[5], CheckFormat},
		{"no typ", seeds[6], CheckFormat},
		{"another key", seeds[7], CheckSignature},
		{"alg none", seeds[8], CheckFormat},
		{"HS256 keyed with the public key", seeds[9], CheckFormat},
		{"truncated", seeds[10], CheckFormat},
		{"too long", seeds[13], CheckFormat},
		{"unknown kid of this issuer", signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "kid": "retired", "typ": TokenType},
			map[string]any{"iss": fuzzIssuer, "jti": "01936f1e-0000-7000-8000-0000000000aa", "exp": fuzzNow.Add(time.Minute).Unix()}), CheckSignature},
	}
	for _, c := range cases {
		claims, d := VerifyAccessToken(c.raw, keys, fuzzIssuer, fuzzNow)
		if c.check == "" {
			require.Nil(t, d, c.name)
			require.Equal(t, "user:alice", claims.Subject)
			require.Equal(t, []string{fuzzAgent}, claims.Act.Chain())
			continue
		}
		require.NotNil(t, d, c.name)
		require.Equal(t, c.check, d.Check, c.name)
	}
}

func TestClipMakesTextStorable(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"alg=\x00", "a\xffb", strings.Repeat("é", 400), strings.Repeat("a", 511) + "é", "plain",
	} {
		got := clip(s)
		require.True(t, utf8.ValidString(got), "%q", s)
		require.NotContains(t, got, "\x00")
		require.LessOrEqual(t, len(got), 512)
	}
	require.Equal(t, "plain", clip("plain"))
	require.Equal(t, strings.Repeat("a", 511), clip(strings.Repeat("a", 511)+"é"), "cut between runes")
}
