package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/audit"
	"github.com/chitdev/chit/tenants/keyring"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the tamper-evident audit trail"}
	cmd.AddCommand(a.auditVerifyCommand(), a.auditExportCommand())
	return cmd
}

func (a *app) auditExportCommand() *cobra.Command {
	var tenant, from, to, format, out string
	cmd := &cobra.Command{
		Use:   "export --tenant T [--from RFC3339] [--to RFC3339] [--format jsonl|csv] [--out FILE]",
		Short: "Export a period of the audit trail with its chain links, checkpoints and keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start, end := time.Unix(0, 0).UTC(), time.Now().UTC().Add(time.Minute)
			var err error
			if from != "" {
				if start, err = time.Parse(time.RFC3339, from); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--from: %w", err)}
				}
			}
			if to != "" {
				if end, err = time.Parse(time.RFC3339, to); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--to: %w", err)}
				}
			}
			svc, done, err := a.tenantService(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			t, err := svc.BySlug(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			w := a.env.Stdout
			if out != "" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return audit.Export(cmd.Context(), svc.DB(), t.ID, start, end, format, w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant slug (required)")
	f.StringVar(&from, "from", "", "start of the period, RFC 3339 (default: the beginning)")
	f.StringVar(&to, "to", "", "end of the period, exclusive, RFC 3339 (default: now)")
	f.StringVar(&format, "format", "jsonl", "jsonl or csv")
	f.StringVar(&out, "out", "", "file to write (default: standard output)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

// verifyFile checks an export offline against a JWKS the auditor trusts.
func (a *app) verifyFile(file, jwksFile string) error {
	data, err := os.ReadFile(jwksFile)
	if err != nil {
		return fmt.Errorf("read --jwks: %w", err)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("--jwks is not a JWK set: %w", err)
	}
	trusted := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if k.Kty == "OKP" && k.Crv == "Ed25519" && err == nil && len(x) == ed25519.PublicKeySize {
			trusted[k.Kid] = x
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := audit.VerifyExport(f, trusted)
	if err != nil {
		return fmt.Errorf("%s is not a chit audit export: %w", file, err)
	}
	view := map[string]any{"ok": r.Problem == nil, "events": r.Events, "first_seq": r.FirstSeq, "last_seq": r.LastSeq,
		"checkpoints": r.Checkpoints, "unsealed": r.Unsealed}
	if r.Problem != nil {
		view["first_bad_link"], view["problem"] = r.Problem.Seq, r.Problem.What
		if err := a.print(view, r.Problem.Error()+"\n"); err != nil {
			return err
		}
		return &exitError{code: 1, err: fmt.Errorf("%s does not verify", file)}
	}
	return a.print(view, fmt.Sprintf("%s verifies: %d events (links %d–%d), %d checkpoints valid, %d events after the last checkpoint (not yet sealed)\n",
		file, r.Events, r.FirstSeq, r.LastSeq, r.Checkpoints, r.Unsealed))
}

func (a *app) auditVerifyCommand() *cobra.Command {
	var tenant, file, jwks string
	cmd := &cobra.Command{
		Use:   "verify --tenant T | --file EXPORT --jwks JWKS",
		Short: "Verify an audit trail (online, or an export offline); exit 1 names the first bad event",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			switch {
			case file != "" && jwks != "" && tenant == "":
				return a.verifyFile(file, jwks)
			case file != "" || jwks != "" || tenant == "":
				return &exitError{code: 2, err: fmt.Errorf("give --tenant, or --file with --jwks")}
			}
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
			problem := report.Problem
			if problem == nil {
				if problem, err = audit.VerifyCheckpoints(ctx, svc.DB(), t.ID, keyring.ByKID(keys)); err != nil {
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
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant slug: verify against the database")
	cmd.Flags().StringVar(&file, "file", "", "an export (chit audit export) to verify offline")
	cmd.Flags().StringVar(&jwks, "jwks", "", "the JWKS you trust (fetched yourself from /t/{t}/v1/audit/keys)")
	return cmd
}
