package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/policy"
)

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Govern what each orchestrator may put in a task (scopes and audiences)",
		Long: `Governance: which scopes and audiences each orchestrator of a tenant may put in a task.
A trailing * in a scope pattern matches any suffix (tickets:* covers tickets:read, not ticketsx).
Scopes and audiences are granted independently; a client without a grant is refused.
Every change is audited and applies on every running replica within a second.`,
	}
	cmd.AddCommand(a.policyChangeCommand(true), a.policyChangeCommand(false), a.policyListCommand())
	return cmd
}

func (a *app) policyChangeCommand(grant bool) *cobra.Command {
	var tenant, client, scopes, audiences string
	verb, short := "revoke", "Take scope patterns or audiences back from a client (exactly as granted)"
	if grant {
		verb, short = "grant", "Let a client put scopes matching these patterns, and these audiences, in its tasks"
	}
	cmd := &cobra.Command{
		Use:   verb + ` --tenant T --client C [--scopes "a b:*"] [--audiences "https://x https://y"]`,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scopeList, audienceList := strings.Fields(scopes), strings.Fields(audiences)
			if len(scopeList) == 0 && len(audienceList) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("nothing to %s: give --scopes, --audiences or both", verb)}
			}
			ctx := cmd.Context()
			svc, t, done, err := a.policyService(ctx, tenant)
			if err != nil {
				return err
			}
			defer done()
			change, past := svc.Revoke, "revoked from"
			if grant {
				change, past = svc.Grant, "granted to"
			}
			if err := change(ctx, t.ID, client, scopeList, audienceList, "cli"); err != nil {
				return err
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%s client %s in tenant %s:\n", past, client, t.Slug)
			if len(scopeList) > 0 {
				fmt.Fprintf(&b, "  scopes     %s\n", strings.Join(scopeList, " "))
			}
			if len(audienceList) > 0 {
				fmt.Fprintf(&b, "  audiences  %s\n", strings.Join(audienceList, " "))
			}
			return a.print(policyChangeView{
				Tenant: string(t.Slug), ClientID: client, Change: verb,
				Scopes: nonNil(scopeList), Audiences: nonNil(audienceList),
			}, b.String())
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant slug (required)")
	f.StringVar(&client, "client", "", "the orchestrator's client_id (required)")
	f.StringVar(&scopes, "scopes", "", `space-separated scope patterns, e.g. "tickets:* mail:send"`)
	f.StringVar(&audiences, "audiences", "", `space-separated audiences (absolute http(s) URIs)`)
	_ = cmd.MarkFlagRequired("tenant")
	_ = cmd.MarkFlagRequired("client")
	return cmd
}

func (a *app) policyListCommand() *cobra.Command {
	var tenant, client string
	cmd := &cobra.Command{
		Use:   "list --tenant T [--client C]",
		Short: "List a tenant's grants, by client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, t, done, err := a.policyService(ctx, tenant)
			if err != nil {
				return err
			}
			defer done()
			rules, err := svc.List(ctx, t.ID)
			if err != nil {
				return err
			}
			views := make([]policyRuleView, 0, len(rules))
			var b strings.Builder
			for _, r := range rules {
				if client != "" && r.ClientID != client {
					continue
				}
				views = append(views, policyRuleView{
					ClientID: r.ClientID, Kind: string(r.Action), Pattern: r.Pattern,
					GrantedAt: r.GrantedAt.UTC(), GrantedBy: r.GrantedBy,
				})
				fmt.Fprintf(&b, "%-36s  %-8s  %-40s  %s  %s\n", r.ClientID, r.Action, r.Pattern,
					r.GrantedAt.UTC().Format(time.RFC3339), r.GrantedBy)
			}
			if len(views) == 0 {
				b.WriteString("no grants: every task of ")
				if client != "" {
					b.WriteString("client " + client + " of ")
				}
				b.WriteString("tenant " + string(t.Slug) + " is refused\n")
			}
			return a.print(views, b.String())
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant slug (required)")
	cmd.Flags().StringVar(&client, "client", "", "only this client's grants")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

// policyService resolves the tenant and opens the policy service on the
// tenant service's pool; done releases both.
func (a *app) policyService(ctx context.Context, slug string) (*policy.Service, *tenants.Tenant, func(), error) {
	tsvc, tdone, err := a.tenantService(ctx, false)
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := tsvc.BySlug(ctx, slug)
	if err != nil {
		tdone()
		return nil, nil, nil, err
	}
	svc, err := policy.New(ctx, tsvc.DB(), clock.System, a.logger())
	if err != nil {
		tdone()
		return nil, nil, nil, err
	}
	return svc, t, func() { svc.Close(); tdone() }, nil
}

// policyChangeView is a grant or revoke as the CLI prints it.
type policyChangeView struct {
	Tenant    string   `json:"tenant"`
	ClientID  string   `json:"client_id"`
	Change    string   `json:"change"`
	Scopes    []string `json:"scopes"`
	Audiences []string `json:"audiences"`
}

// policyRuleView is one grant as the CLI prints it.
type policyRuleView struct {
	ClientID  string    `json:"client_id"`
	Kind      string    `json:"kind"`
	Pattern   string    `json:"pattern"`
	GrantedAt time.Time `json:"granted_at"`
	GrantedBy string    `json:"granted_by"`
}
