package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/tenants"
)

func (a *app) tenantCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Create, change and list tenants"}
	cmd.AddCommand(a.tenantCreateCommand(), a.tenantUpdateCommand(), a.tenantListCommand())
	return cmd
}

func (a *app) tenantCreateCommand() *cobra.Command {
	var trustDomain string
	cmd := &cobra.Command{
		Use:   "create SLUG --trust-domain DOMAIN",
		Short: "Create a tenant with its own trust domain and signing key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := a.tenantService(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer done()
			t, err := svc.Create(cmd.Context(), tenants.CreateParams{Slug: args[0], TrustDomain: trustDomain})
			if err != nil {
				return err
			}
			return a.printTenant(t, "created ")
		},
	}
	cmd.Flags().StringVar(&trustDomain, "trust-domain", "", "the tenant's SPIFFE trust domain, e.g. acme.example (required)")
	_ = cmd.MarkFlagRequired("trust-domain")
	return cmd
}

func (a *app) tenantUpdateCommand() *cobra.Command {
	var ttl, liveness time.Duration
	var renewals, depth int
	cmd := &cobra.Command{
		Use:   "update SLUG [--token-ttl 5m] [--max-renewals N] [--max-depth N] [--liveness 90s]",
		Short: "Change a tenant's credential settings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var change tenants.SettingsChange
			f := cmd.Flags()
			if f.Changed("token-ttl") {
				change.TokenTTL = &ttl
			}
			if f.Changed("max-renewals") {
				change.MaxRenewals = &renewals
			}
			if f.Changed("max-depth") {
				change.MaxDepth = &depth
			}
			if f.Changed("liveness") {
				change.Liveness = &liveness
			}
			if change == (tenants.SettingsChange{}) {
				return &exitError{code: 2, err: fmt.Errorf("nothing to change: give at least one of --token-ttl, --max-renewals, --max-depth, --liveness")}
			}
			svc, done, err := a.tenantService(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			t, err := svc.Update(cmd.Context(), args[0], change)
			if err != nil {
				return err
			}
			return a.printTenant(t, "updated ")
		},
	}
	d := tenants.DefaultSettings()
	cmd.Flags().DurationVar(&ttl, "token-ttl", d.TokenTTL, "access token lifetime (30s to 1h)")
	cmd.Flags().IntVar(&renewals, "max-renewals", d.MaxRenewals, "renewals allowed per agent")
	cmd.Flags().IntVar(&depth, "max-depth", d.MaxDepth, "longest lineage of agents (1 to 16)")
	cmd.Flags().DurationVar(&liveness, "liveness", d.Liveness, "revoke an agent silent this long (10s to 24h)")
	return cmd
}

func (a *app) tenantListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, done, err := a.tenantService(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			list, err := svc.List(cmd.Context())
			if err != nil {
				return err
			}
			views := make([]tenantView, 0, len(list))
			var b strings.Builder
			for _, t := range list {
				views = append(views, viewTenant(t))
				fmt.Fprintf(&b, "%-24s %-32s %s\n", t.Slug, t.TrustDomain.Name(), t.ID)
			}
			return a.print(views, b.String())
		},
	}
}

// tenantView is a tenant as the CLI prints it.
type tenantView struct {
	ID              string    `json:"id"`
	Slug            string    `json:"slug"`
	TrustDomain     string    `json:"trust_domain"`
	TokenTTLSeconds int       `json:"token_ttl_seconds"`
	MaxRenewals     int       `json:"max_renewals"`
	MaxDepth        int       `json:"max_depth"`
	LivenessSeconds int       `json:"liveness_seconds"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func viewTenant(t *tenants.Tenant) tenantView {
	return tenantView{
		ID: t.ID.String(), Slug: string(t.Slug), TrustDomain: t.TrustDomain.Name(),
		TokenTTLSeconds: int(t.Settings.TokenTTL / time.Second), MaxRenewals: t.Settings.MaxRenewals,
		MaxDepth: t.Settings.MaxDepth, LivenessSeconds: int(t.Settings.Liveness / time.Second),
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
	}
}

func (a *app) printTenant(t *tenants.Tenant, verb string) error {
	s := t.Settings
	text := fmt.Sprintf("%stenant %s (trust domain %s, id %s)\n  token ttl %s, max renewals %d, max depth %d, liveness %s\n",
		verb, t.Slug, t.TrustDomain.Name(), t.ID, s.TokenTTL, s.MaxRenewals, s.MaxDepth, s.Liveness)
	return a.print(viewTenant(t), text)
}
