package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/oauth"
)

func (a *app) clientCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register a tenant's workloads (orchestrators, resource servers, auditors)"}
	cmd.AddCommand(a.clientCreateCommand())
	return cmd
}

func (a *app) clientCreateCommand() *cobra.Command {
	var tenant, kind, name, jwkFile string
	cmd := &cobra.Command{
		Use:   "create --tenant T --kind orchestrator|resource-server|auditor --name N --jwk FILE",
		Short: "Register a client with its public Ed25519 JWK; prints its client_id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := oauth.ParseClientKind(kind)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			data, err := os.ReadFile(jwkFile)
			if err != nil {
				return fmt.Errorf("read --jwk: %w", err)
			}
			pub, err := oauth.ParsePublicJWK(data)
			if err != nil {
				return err
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
			o := oauth.NewService(oauth.Config{DB: svc.DB(), Keys: svc.Keys(), Clock: clock.System})
			c, err := o.CreateClient(cmd.Context(), t, k, name, pub, "cli")
			if err != nil {
				return err
			}
			return a.print(map[string]any{"client_id": c.ID, "kind": c.Kind, "name": c.Name, "tenant": t.Slug},
				c.ID+"\n")
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant slug (required)")
	f.StringVar(&kind, "kind", "", "orchestrator, resource-server or auditor (required)")
	f.StringVar(&name, "name", "", "a name people recognise (required)")
	f.StringVar(&jwkFile, "jwk", "", "file holding the client's public JWK, OKP Ed25519 (required)")
	for _, n := range []string{"tenant", "kind", "name", "jwk"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
