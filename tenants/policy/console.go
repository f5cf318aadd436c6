package policy

import "github.com/google/uuid"

// Permission is something a console user may do in a tenant.
type Permission string

// Console permissions. Reading credentials, lineage and denials is the
// least any role has; the audit trail is for auditors; changing anything
// is for admins.
const (
	ViewCredentials Permission = "view"
	ReadAudit       Permission = "audit"
	Revoke          Permission = "revoke"
	EditPolicy      Permission = "policy"
	RotateKeys      Permission = "keys"
)

// rolePermissions is the whole matrix; a role not listed can do nothing.
var rolePermissions = map[Role][]Permission{
	RoleViewer:  {ViewCredentials},
	RoleAuditor: {ViewCredentials, ReadAudit},
	RoleAdmin:   {ViewCredentials, ReadAudit, Revoke, EditPolicy, RotateKeys},
}

// Can reports whether the role grants p.
func (r Role) Can(p Permission) bool {
	for _, have := range rolePermissions[r] {
		if have == p {
			return true
		}
	}
	return false
}

// ConsoleRole is the strongest role a console user holds in the tenant;
// ok is false when they hold none (and so may see nothing of it).
func (s *Service) ConsoleRole(tenantID uuid.UUID, userID string) (role Role, ok bool) {
	for _, r := range []Role{RoleAdmin, RoleAuditor, RoleViewer} {
		if s.HasRole(tenantID, userID, r) {
			return r, true
		}
	}
	return "", false
}
