package oauth

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/tenants"
)

// auditorOnly refuses everyone but auditor clients (console auditors come
// with the console).
func auditorOnly(caller *Caller) error {
	if caller.IsAgent() || caller.Kind != KindAuditor {
		d := apiDenial(http.StatusForbidden, CheckPolicy, "only auditor clients read the audit trail")
		d.ClientID = caller.ClientID
		return d
	}
	return nil
}

// AuditKeys returns every key that ever signed a checkpoint of t.
func (s *Service) AuditKeys(ctx context.Context, t *tenants.Tenant, caller *Caller) ([]audit.ExportKey, error) {
	if err := auditorOnly(caller); err != nil {
		return nil, err
	}
	return audit.CheckpointKeys(ctx, s.db, t.ID)
}

// AuditCheckpoints lists t's checkpoints after seq.
func (s *Service) AuditCheckpoints(ctx context.Context, t *tenants.Tenant, caller *Caller, after int64, limit int) ([]audit.ExportCheckpoint, error) {
	if err := auditorOnly(caller); err != nil {
		return nil, err
	}
	return audit.Checkpoints(ctx, s.db, t.ID, after, limit)
}

// AuditExport streams t's trail for [from, to) to w.
func (s *Service) AuditExport(ctx context.Context, t *tenants.Tenant, caller *Caller, from, to time.Time, format string, w io.Writer) error {
	if err := auditorOnly(caller); err != nil {
		return err
	}
	return audit.Export(ctx, s.db, t.ID, from, to, format, w)
}

// AuditAllowed reports whether caller may read t's audit trail, so a
// handler can refuse before it starts streaming.
func (s *Service) AuditAllowed(caller *Caller) error { return auditorOnly(caller) }

// AuditQuery lists t's events matching f, newest first.
func (s *Service) AuditQuery(ctx context.Context, t *tenants.Tenant, caller *Caller, f audit.Filter) (*audit.Page, error) {
	if err := auditorOnly(caller); err != nil {
		return nil, err
	}
	return audit.Query(ctx, s.db, t.ID, f)
}
