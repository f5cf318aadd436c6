package policy_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/tenants/policy"
)

// benchTenantLines is a plausible tenant: 20 orchestrators, each with 10
// scope patterns and 3 audiences.
func benchTenantLines(tenant uuid.UUID) [][]string {
	var lines [][]string
	for c := range 20 {
		sub := fmt.Sprintf("client:orch-%d", c)
		for i := range 10 {
			lines = append(lines, []string{"p", sub, tenant.String(), fmt.Sprintf("svc%d:*", i), "scope"})
		}
		for i := range 3 {
			lines = append(lines, []string{"p", sub, tenant.String(), fmt.Sprintf("https://api%d.example", i), "audience"})
		}
	}
	return lines
}

// BenchmarkCheckTask is the cost the policy check adds to a task creation
// (or any path that calls CheckTask): in memory, one enforcer per tenant,
// with 500 other tenants loaded to show it does not grow with them.
func BenchmarkCheckTask(b *testing.B) {
	tenant := uuid.New()
	rules := map[uuid.UUID][][]string{tenant: benchTenantLines(tenant)}
	for range 500 {
		id := uuid.New()
		rules[id] = benchTenantLines(id)
	}
	s, err := policy.NewInMemory(rules)
	require.NoError(b, err)

	cases := []struct {
		name      string
		scopes    []string
		audiences []string
		allowed   bool
	}{
		{"allow/1scope", []string{"svc3:read"}, nil, true},
		{"allow/4scopes+1audience", []string{"svc1:read", "svc4:write", "svc7:read", "svc9:admin"}, []string{"https://api2.example"}, true},
		{"deny/1of4scopes", []string{"svc1:read", "svc4:write", "nope:read", "svc9:admin"}, []string{"https://api2.example"}, false},
		{"deny/unknown-client", []string{"svc1:read"}, nil, false},
	}
	for _, c := range cases {
		client := "orch-17"
		if c.name == "deny/unknown-client" {
			client = "ghost"
		}
		require.Equal(b, c.allowed, s.CheckTask(tenant, client, c.scopes, c.audiences).Allowed)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.CheckTask(tenant, client, c.scopes, c.audiences)
			}
		})
	}
	// The first check of a scope after a change of the tenant's policy is
	// answered by Casbin itself; later ones from the memo.
	fresh := make([]string, 3*4096)
	for i := range fresh {
		fresh[i] = fmt.Sprintf("svc3:item-%d", i)
	}
	b.Run("allow/1scope/uncached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.CheckTask(tenant, "orch-17", fresh[i%len(fresh):i%len(fresh)+1], nil)
			i++
		}
	})
	b.Run("allow/4scopes+1audience/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.CheckTask(tenant, "orch-17", cases[1].scopes, cases[1].audiences)
			}
		})
	})
}
