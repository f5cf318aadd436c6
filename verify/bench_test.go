package verify

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"
)

func benchVerifier(b *testing.B, cacheSize int) (*Verifier, []string) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	v := &Verifier{cfg: Config{Issuer: "https://chit.example/t/acme", Audience: "https://api.acme.example",
		CacheSize: cacheSize, MaxStaleness: time.Hour, Now: time.Now},
		keys: map[string]ed25519.PublicKey{"k1": pub}, revoked: map[string]time.Time{"jti:other": time.Now()},
		cache: NewCache(cacheSize), fresh: time.Now()}
	var tokens []string
	for i := range 2 {
		claims, _ := json.Marshal(Claims{Issuer: v.cfg.Issuer, Subject: "user:alice", Audience: []string{v.cfg.Audience},
			Expiry: time.Now().Add(time.Hour).Unix(), IssuedAt: time.Now().Unix(), NotBefore: time.Now().Unix(),
			ID: "jti-" + string(rune('a'+i)), ClientID: "orch", Scope: "tickets:read", TaskID: "task",
			AgentID: "agent", Act: &Actor{Sub: "spiffe://acme.example/agent/orch/task/agent", Act: &Actor{Sub: "spiffe://acme.example/agent/orch/task/parent"}}})
		signing := b64.EncodeToString([]byte(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`)) + "." + b64.EncodeToString(claims)
		tokens = append(tokens, signing+"."+b64.EncodeToString(ed25519.Sign(priv, []byte(signing))))
	}
	return v, tokens
}

// The raw cost first-seen validation is compared with (SPEC §7: within 80 %).
func BenchmarkEd25519VerifyRaw(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 600) // about a token's signing input
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		ed25519.Verify(pub, msg, sig)
	}
}

func BenchmarkVerifyFirstSeen(b *testing.B) {
	v, tokens := benchVerifier(b, 1) // a cache of one, alternating tokens: every call is a miss
	i := 0
	for b.Loop() {
		if _, err := v.Verify(tokens[i%2], "tickets:read"); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	v, tokens := benchVerifier(b, 1000)
	if _, err := v.Verify(tokens[0]); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Verify(tokens[0], "tickets:read"); err != nil {
			b.Fatal(err)
		}
	}
}
