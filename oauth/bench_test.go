package oauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/chitdev/chit/tenants/keyring"
)

// The raw cost the JWT work is measured against (SPEC §7: ≈65 µs a verification here).
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("header.payload of a typical access token, about this long")
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkVerifyAccessToken(b *testing.B) {
	signer, pub := benchSigner(b)
	tok, err := SignAccessToken(signer, &AccessClaims{Issuer: "https://chit.example/t/acme", Subject: "user:alice",
		Audience: []string{"https://api.acme.example"}, Expiry: time.Now().Add(time.Hour).Unix(), IssuedAt: time.Now().Unix(),
		NotBefore: time.Now().Unix(), ID: uuid.NewString(), ClientID: "orch", Scope: "tickets:read",
		Act: NewActorChain("spiffe://acme.example/agent/orch/t/a"), TaskID: uuid.NewString(), AgentID: uuid.NewString()})
	if err != nil {
		b.Fatal(err)
	}
	keys := func(string) ed25519.PublicKey { return pub }
	now := time.Now()
	for b.Loop() {
		if _, d := VerifyAccessToken(tok, keys, "https://chit.example/t/acme", now); d != nil {
			b.Fatal(d)
		}
	}
}

func BenchmarkSignAccessToken(b *testing.B) {
	signer, _ := benchSigner(b)
	c := &AccessClaims{Issuer: "https://chit.example/t/acme", Subject: "user:alice", Audience: []string{"https://api.acme.example"},
		Expiry: time.Now().Add(time.Hour).Unix(), ID: uuid.NewString(), ClientID: "orch", Scope: "tickets:read"}
	for b.Loop() {
		if _, err := SignAccessToken(signer, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAndVerifyAssertion(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv}, nil)
	now := time.Now()
	raw, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "s", Subject: "s", Audience: jwt.Audience{"aud"}, ID: "j",
		Expiry: jwt.NewNumericDate(now.Add(30 * time.Second))}).Serialize()
	for b.Loop() {
		a, d := ParseAssertion(raw)
		if d != nil {
			b.Fatal(d)
		}
		if _, d := a.Verify(pub, []string{"aud"}, now, time.Minute); d != nil {
			b.Fatal(d)
		}
	}
}

func benchSigner(b *testing.B) (*keyring.Signer, ed25519.PublicKey) {
	s, pub, err := keyring.NewEphemeralSigner()
	if err != nil {
		b.Fatal(err)
	}
	return s, pub
}
