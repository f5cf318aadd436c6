package ui

// Nav keys: the values of Shell.Active.
const (
	NavOverview    = "overview"
	NavAgents      = "agents"
	NavTasks       = "tasks"
	NavDenials     = "denials"
	NavRevocations = "revocations"
	NavAudit       = "audit"
	NavPolicies    = "policies"
	NavKeys        = "keys"
)

// Roles of a console user, as Shell.Role carries them.
const (
	RoleAdmin   = "admin"
	RoleAuditor = "auditor"
	RoleViewer  = "viewer"
)

type navItem struct {
	key, label, sub string
}

type navGroup struct {
	label string
	items []navItem
}

// navGroups is the console's navigation for a role. The audit trail is shown
// to admins and auditors only; the web layer enforces the same rule.
func navGroups(role string) []navGroup {
	security := []navItem{
		{NavDenials, "Denials", "denials"},
		{NavRevocations, "Revocations", "revocations"},
	}
	if role == RoleAdmin || role == RoleAuditor {
		security = append(security, navItem{NavAudit, "Audit trail", "audit"})
	}
	return []navGroup{
		{"Monitor", []navItem{
			{NavOverview, "Overview", ""},
			{NavAgents, "Agents", "agents"},
			{NavTasks, "Tasks", "tasks"},
		}},
		{"Security", security},
		{"Configuration", []navItem{
			{NavPolicies, "Policies", "policies"},
			{NavKeys, "Signing keys", "keys"},
		}},
	}
}

// otherTenants are the switcher's links: every tenant but the current one.
func otherTenants(s Shell) []TenantLink {
	var others []TenantLink
	for _, t := range s.Tenants {
		if t.Current || t.Slug == s.Tenant {
			continue
		}
		others = append(others, t)
	}
	return others
}

func roleClass(role string) string {
	switch role {
	case RoleAdmin, RoleAuditor, RoleViewer:
		return "role-" + role
	}
	return ""
}
