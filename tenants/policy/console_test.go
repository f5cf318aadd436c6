package policy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants/policy"
)

func TestConsoleRolesGrantOnlyTheirPermissions(t *testing.T) {
	t.Parallel()
	want := map[policy.Role][]policy.Permission{
		policy.RoleViewer:  {policy.ViewCredentials},
		policy.RoleAuditor: {policy.ViewCredentials, policy.ReadAudit},
		policy.RoleAdmin:   {policy.ViewCredentials, policy.ReadAudit, policy.Revoke, policy.EditPolicy, policy.RotateKeys},
		"":                 nil,
		"root":             nil,
	}
	all := []policy.Permission{policy.ViewCredentials, policy.ReadAudit, policy.Revoke, policy.EditPolicy, policy.RotateKeys}
	for role, perms := range want {
		for _, p := range all {
			require.Equal(t, contains(perms, p), role.Can(p), "role %q permission %q", role, p)
		}
	}
}

func contains(list []policy.Permission, p policy.Permission) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func TestConsoleRoleIsTheStrongestHeldInThatTenantOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	s := newService(t, db)
	a, b := newTenant(t, db), newTenant(t, db)
	user := "0193a8f0-0000-7000-8000-000000000001"

	_, ok := s.ConsoleRole(a, user)
	require.False(t, ok, "no role, no access")

	require.NoError(t, s.AssignRole(ctx, a, user, policy.RoleViewer, "operator:cli"))
	require.NoError(t, s.AssignRole(ctx, a, user, policy.RoleAdmin, "operator:cli"))
	role, ok := s.ConsoleRole(a, user)
	require.True(t, ok)
	require.Equal(t, policy.RoleAdmin, role)

	_, ok = s.ConsoleRole(b, user)
	require.False(t, ok, "a role in one tenant is nothing in another")

	require.NoError(t, s.RevokeRole(ctx, a, user, policy.RoleAdmin, "operator:cli"))
	role, _ = s.ConsoleRole(a, user)
	require.Equal(t, policy.RoleViewer, role)
}
