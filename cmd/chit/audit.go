package main

import (
	"crypto/ed25519"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/audit"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the tamper-evident audit trail"}
	cmd.AddCommand(a.auditVerifyCommand())
	return cmd
}

func (a *app) auditVerifyCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "verify --tenant T",
		Short: "Verify a tenant's audit chain and checkpoints against the database; exit 1 names the first bad event",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, done, err := a.tenantService(ctx, false)
			if err != nil {
				return err
			}
			defer done()
			t, err := svc.BySlug(ctx, tenant)
			if err != nil {
				return err
			}
			report, err := audit.Verify(ctx, svc.DB(), t.ID)
			if err != nil {
				return err
			}
			keys, err := svc.Keys().All(ctx, t.ID)
			if err != nil {
				return err
			}
			trusted := func(kid string) ed25519.PublicKey {
				for _, k := range keys {
					if k.KeyID == kid {
						return k.Key
					}
				}
				return nil
			}
			problem := report.Problem
			if problem == nil {
				if problem, err = audit.VerifyCheckpoints(ctx, svc.DB(), t.ID, trusted); err != nil {
					return err
				}
			}
			view := map[string]any{"tenant": t.Slug, "links": report.Links, "unchained": report.Unchained, "ok": problem == nil}
			if problem != nil {
				view["first_bad_link"], view["event_id"], view["problem"] = problem.Seq, problem.EventID, problem.What
				if err := a.print(view, problem.Error()+"\n"); err != nil {
					return err
				}
				return &exitError{code: 1, err: fmt.Errorf("audit trail of %s does not verify", t.Slug)}
			}
			return a.print(view, fmt.Sprintf("audit trail of %s verifies: %d links, checkpoints valid, %d newer events not yet chained\n",
				t.Slug, report.Links, report.Unchained))
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant slug (required)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}
