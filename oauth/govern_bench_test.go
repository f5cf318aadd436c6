package oauth

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/policy"
)

// BenchmarkExchangePolicyCheck is what governance adds to one exchange:
// the fast path asks once (allowed); the full path asks for the caps and
// then for the grant (govern). A tenant of 20 orchestrators with 10 scope
// patterns and 3 audiences each, among 500 such tenants; the token holds 3
// scopes and 1 audience.
func BenchmarkExchangePolicyCheck(b *testing.B) {
	tenant := uuid.New()
	rules := map[uuid.UUID][][]string{}
	for _, id := range append([]uuid.UUID{tenant}, manyIDs(500)...) {
		var lines [][]string
		for c := range 20 {
			sub := fmt.Sprintf("client:orch-%d", c)
			for i := range 10 {
				lines = append(lines, []string{"p", sub, id.String(), fmt.Sprintf("svc%d:*", i), "scope"})
			}
			for i := range 3 {
				lines = append(lines, []string{"p", sub, id.String(), fmt.Sprintf("https://api%d.example", i), "audience"})
			}
		}
		rules[id] = lines
	}
	p, err := policy.NewInMemory(rules)
	if err != nil {
		b.Fatal(err)
	}
	s := &Service{policy: PolicyGovernor{P: p}}
	t := &tenants.Tenant{ID: tenant}
	scope := NewScope("svc1:read", "svc4:write", "svc7:read")
	auds := []string{"https://api2.example"}
	if !s.allowed(t, "orch-17", scope, auds) {
		b.Fatal("the benchmark's exchange must be allowed")
	}
	b.Run("fast-path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !s.allowed(t, "orch-17", scope, auds) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("full-path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.policy.CheckTask(t.ID, "orch-17", nil, nil)
			if _, d := s.govern(t, "orch-17", scope, auds, false); d != nil {
				b.Fatal(d)
			}
		}
	})
}

func manyIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return ids
}
