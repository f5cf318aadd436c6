package oauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// Fuzz targets for what the token endpoint parses before trusting anything:
// JWTs (agent and client assertions, access tokens), its form parameters
// and scopes. `go test` runs their seed corpora; CI runs each briefly with
// `go test -run=^$ -fuzz=FuzzParseAssertion -fuzztime=10s ./oauth/`.

var (
	fuzzKey    = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	fuzzPub    = fuzzKey.Public().(ed25519.PublicKey)
	fuzzNow    = time.Unix(1_800_000_000, 0).UTC()
	fuzzIssuer = "https://chit.example/t/acme"
	fuzzAud    = fuzzIssuer + "/oauth2/token"
	fuzzAgent  = "spiffe://acme.example/agent/orch-1/01936f1e-0000-7000-8000-000000000001/01936f1e-0000-7000-8000-000000000002"
)

func seg(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// signCompact signs header.claims with key, EdDSA, by hand.
func signCompact(key ed25519.PrivateKey, header, claims any) string {
	input := seg(header) + "." + seg(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

func hmacCompact(secret []byte, header, claims any) string {
	input := seg(header) + "." + seg(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// requireSignedBy checks, independently of go-jose, that the header and
// payload raw carries were signed by pub with EdDSA, and returns them.
func requireSignedBy(t *testing.T, raw string, pub ed25519.PublicKey) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	require.Len(t, parts, 3, "accepted: a compact JWS")
	var decoded [3][]byte
	for i, p := range parts {
		var err error
		decoded[i], err = base64.RawURLEncoding.DecodeString(p)
		require.NoError(t, err, "accepted: segment %d is base64url", i)
	}
	// Verify over the canonical encoding of what was decoded: that is the
	// content chit acted on.
	input := base64.RawURLEncoding.EncodeToString(decoded[0]) + "." + base64.RawURLEncoding.EncodeToString(decoded[1])
	require.True(t, ed25519.Verify(pub, []byte(input), decoded[2]), "accepted, so it must verify with the key")
	require.NoError(t, json.Unmarshal(decoded[0], &header))
	require.Equal(t, "EdDSA", header["alg"], "only EdDSA is ever accepted")
	require.NoError(t, json.Unmarshal(decoded[1], &payload))
	return header, payload
}

func assertionSeeds() []string {
	claims := map[string]any{"iss": fuzzAgent, "sub": fuzzAgent, "aud": fuzzAud, "jti": "j-1",
		"iat": fuzzNow.Unix(), "exp": fuzzNow.Add(30 * time.Second).Unix()}
	valid := signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "typ": "JWT"}, claims)
	listAud := map[string]any{"iss": fuzzAgent, "sub": fuzzAgent, "aud": []string{"https://other.example", fuzzAud},
		"jti": "j-2", "nbf": fuzzNow.Unix(), "exp": fuzzNow.Add(50 * time.Second).Unix()}
	big := map[string]any{"iss": fuzzAgent, "sub": fuzzAgent, "aud": fuzzAud, "jti": "j-3",
		"exp": fuzzNow.Add(30 * time.Second).Unix(), "pad": strings.Repeat("x", MaxJWTBytes)}
	expired := map[string]any{"iss": fuzzAgent, "sub": fuzzAgent, "aud": fuzzAud, "jti": "j-4",
		"exp": fuzzNow.Add(-31 * time.Second).Unix()}
	return []string{
		valid,
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "kid": "k1"}, listAud),
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA"}, expired),
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA"}, big),
		seg(map[string]any{"alg": "none"}) + "." + seg(claims) + ".",
		seg(map[string]any{"alg": "none"}) + "." + seg(claims),
		hmacCompact(fuzzPub, map[string]any{"alg": "HS256", "typ": "JWT"}, claims),
		signCompact(fuzzKey, map[string]any{"alg": "ES256"}, claims),
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "crit": []string{"exp"}}, claims),
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "jwk": map[string]any{"kty": "OKP"}}, claims),
		valid[:len(valid)-5],
		valid[:len(valid)/2],
		valid + ".x",
		valid + "=",
		strings.Replace(valid, ".", "..", 1),
		`{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJFZERTQSJ9","signature":""}]}`,
		"",
		".",
		"..",
		strings.Repeat("A", MaxJWTBytes+1),
		strings.Repeat("eyJ", 3000) + "." + strings.Repeat("e30", 10) + ".",
	}
}

func FuzzParseAssertion(f *testing.F) {
	for _, s := range assertionSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, d := ParseAssertion(raw)
		require.True(t, (a == nil) != (d == nil), "an assertion or a denial, never both or neither")
		if d != nil {
			require.Equal(t, CheckFormat, d.Check)
			require.Equal(t, ErrInvalidRequest, d.OAuthError)
			if len(raw) >= 24 {
				require.NotContains(t, d.Reason+d.Expected+d.Presented, raw[:24], "a denial never echoes the token")
			}
			return
		}
		require.LessOrEqual(t, len(raw), MaxJWTBytes)
		require.NotEmpty(t, a.Subject())

		v, d := a.Verify(fuzzPub, []string{fuzzAud, fuzzIssuer}, fuzzNow, AgentAssertionMaxLife)
		require.True(t, (v == nil) != (d == nil), "verified or denied, never both or neither")
		if d != nil {
			require.Contains(t, []Check{CheckSignature, CheckFormat, CheckExpired, CheckAudience}, d.Check)
			require.Equal(t, ErrInvalidRequest, d.OAuthError, "a bad assertion is invalid_request, whatever failed")
			return
		}
		_, payload := requireSignedBy(t, raw, fuzzPub)
		require.Equal(t, payload["sub"], v.Subject)
		require.Equal(t, a.Subject(), v.Subject)
		require.Equal(t, payload["jti"], v.ID)
		require.NotEmpty(t, v.ID)
		require.False(t, fuzzNow.After(v.Expiry.Add(Skew)), "never accepted past exp + skew")
		require.LessOrEqual(t, v.Expiry.Sub(fuzzNow), AgentAssertionMaxLife+Skew, "never accepted living too long")
	})
}

func accessSeeds() []string {
	header := map[string]any{"alg": "EdDSA", "kid": "k1", "typ": TokenType}
	claims := AccessClaims{Issuer: fuzzIssuer, Subject: "user:alice", Audience: []string{"https://api.acme.example"},
		Expiry: fuzzNow.Add(5 * time.Minute).Unix(), IssuedAt: fuzzNow.Unix(), NotBefore: fuzzNow.Unix(),
		ID: "01936f1e-0000-7000-8000-0000000000aa", ClientID: "orch-1", Scope: "tickets:read",
		Act: NewActorChain(fuzzAgent), TaskID: "01936f1e-0000-7000-8000-000000000001", AgentID: "01936f1e-0000-7000-8000-000000000002"}
	valid := signCompact(fuzzKey, header, claims)
	other := claims
	other.Issuer = "https://chit.example/t/bravo"
	expired := claims
	expired.Expiry = fuzzNow.Add(-31 * time.Second).Unix()
	badJTI := claims
	badJTI.ID = "not-a-uuid"
	_, stranger, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
	return []string{
		valid,
		signCompact(fuzzKey, header, other),
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "kid": "k2", "typ": TokenType}, other),
		signCompact(fuzzKey, header, expired),
		signCompact(fuzzKey, header, badJTI),
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "kid": "k1", "typ": "JWT"}, claims),
		signCompact(fuzzKey, map[string]any{"alg": "EdDSA", "kid": "k1"}, claims),
		signCompact(stranger, header, claims),
		seg(map[string]any{"alg": "none", "kid": "k1", "typ": TokenType}) + "." + seg(claims) + ".",
		hmacCompact(fuzzPub, map[string]any{"alg": "HS256", "kid": "k1", "typ": TokenType}, claims),
		valid[:len(valid)-1],
		valid[:len(valid)/3],
		valid + "AA",
		strings.Repeat("A", MaxJWTBytes+1),
		"",
		"..",
		"a.b.c",
	}
}

func FuzzVerifyAccessToken(f *testing.F) {
	for _, s := range accessSeeds() {
		f.Add(s)
	}
	keys := func(kid string) ed25519.PublicKey {
		if kid == "k1" {
			return fuzzPub
		}
		return nil
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, d := VerifyAccessToken(raw, keys, fuzzIssuer, fuzzNow)
		require.True(t, (c == nil) != (d == nil), "claims or a denial, never both or neither")
		if d != nil {
			require.Contains(t, []Check{CheckSignature, CheckFormat, CheckExpired, CheckTenant}, d.Check)
			return
		}
		header, payload := requireSignedBy(t, raw, fuzzPub)
		require.Equal(t, TokenType, header["typ"])
		require.Equal(t, "k1", header["kid"])
		require.Equal(t, fuzzIssuer, c.Issuer)
		require.Equal(t, payload["iss"], c.Issuer)
		require.Equal(t, payload["jti"], c.ID)
		_, err := uuid.Parse(c.ID)
		require.NoError(t, err)
		require.LessOrEqual(t, fuzzNow.Unix(), c.Expiry+int64(Skew/time.Second), "never accepted past exp + skew")
		require.LessOrEqual(t, c.NotBefore, fuzzNow.Unix()+int64(Skew/time.Second), "never accepted before nbf - skew")
	})
}

func FuzzCheckTokenForm(f *testing.F) {
	for _, s := range []string{
		url.Values{"grant_type": {GrantClientCredentials}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {"a.b.c"}}.Encode(),
		url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {"a.b.c"}, "subject_token_type": {TokenTypeJWT},
			"scope": {"tickets:read"}, "audience": {"https://a.example", "https://b.example"}, "resource": {"https://c.example"}}.Encode(),
		"grant_type=password&username=u&password=p",
		"grant_type=authorization_code&code=x",
		"grant_type=" + GrantTokenExchange + "&grant_type=" + GrantClientCredentials,
		"scope=a&scope=b&grant_type=" + GrantTokenExchange,
		"grant_type=a%00b",
		"grant_type=" + strings.Repeat("a", 63) + "%C3%A9",
		"%FF%FE=1&grant_type=" + GrantTokenExchange,
		"x%00y=1",
		"grant_type=",
		"",
		"&&&=&=",
		strings.Repeat("audience=x&", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		form, err := url.ParseQuery(data)
		if err != nil {
			return // the server refuses the body before CheckTokenForm
		}
		d := CheckTokenForm(form)
		if d == nil {
			for k, v := range form {
				require.True(t, tokenParams[k], "accepted an unknown parameter %q", k)
				if slices.Contains(singleParams, k) {
					require.Len(t, v, 1, "accepted a repeated %s", k)
				}
			}
			require.Contains(t, []string{GrantClientCredentials, GrantTokenExchange}, form.Get("grant_type"))
			return
		}
		require.Equal(t, CheckFormat, d.Check)
		require.Equal(t, 400, d.Status)
		require.Contains(t, []string{ErrInvalidRequest, ErrUnsupportedGrantType}, d.OAuthError)
		if d.OAuthError == ErrUnsupportedGrantType {
			require.NotEmpty(t, form.Get("grant_type"))
		}
		// Whatever the input, the trace is bounded and storable.
		require.LessOrEqual(t, len(d.Reason), 200)
		require.LessOrEqual(t, len(d.Presented), 200)
		for _, s := range []string{d.Reason, d.Expected, d.Presented} {
			stored := clip(s)
			require.True(t, utf8.ValidString(stored))
			require.NotContains(t, stored, "\x00")
			require.LessOrEqual(t, len(stored), 512)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range [][2]string{
		{"tickets:read tickets:write kb:read", "tickets:read"},
		{"a b c", "a b c d"},
		{"a  b   a", ""},
		{"", "a"},
		{"tickets:*", "tickets:read"},
		{"caf\u00e9", "a"},
		{"a\"b", "a\\b"},
		{strings.Repeat("x ", MaxScopeTokens+1), "x"},
		{strings.Repeat("y", 129), "y"},
		{"a\tb", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, heldRaw, requestedRaw string) {
		held, err := ParseScope(heldRaw)
		if err != nil {
			return
		}
		require.LessOrEqual(t, held.Len(), MaxScopeTokens)
		tokens := held.Tokens()
		require.True(t, slices.IsSorted(tokens))
		require.Equal(t, len(tokens), len(slices.Compact(slices.Clone(tokens))), "no duplicates")
		again, err := ParseScope(held.String())
		require.NoError(t, err, "String() parses back")
		require.True(t, held.Equal(again))
		require.Equal(t, held.String(), again.String(), "String() round-trips")

		requested, err := ParseScope(requestedRaw)
		if err != nil {
			return
		}
		got, err := held.Attenuate(requested)
		if err != nil {
			require.False(t, requested.SubsetOf(held))
			require.NotEmpty(t, requested.Missing(held))
			return
		}
		require.True(t, got.SubsetOf(held), "Attenuate never grows")
		require.LessOrEqual(t, got.Len(), held.Len())
		if requested.IsEmpty() {
			require.True(t, got.Equal(held))
		} else {
			require.True(t, got.Equal(requested))
		}
	})
}
