package main

import (
	"context"
	"fmt"
	"strconv"
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
		Short: "Govern what each orchestrator may grant, and which clients may introspect or read the feed",
		Long: `Governance: which scopes and audiences each orchestrator of a tenant may put in a task (checked
again on every launch token, exchange, renewal and delegation), its optional caps on task TTL and
delegation depth (they only tighten the tenant's settings), and which resource servers may
introspect (--introspect) and read the revocation feed (--feed); a resource server gets both when
it is created.
A trailing * in a scope pattern matches any suffix (tickets:* covers tickets:read, not ticketsx).
Scopes and audiences are granted independently; a client without a grant is refused.
Every change is audited and applies on every running replica within a second.`,
	}
	cmd.AddCommand(a.policyChangeCommand(true), a.policyChangeCommand(false), a.policyListCommand())
	return cmd
}

func (a *app) policyChangeCommand(grant bool) *cobra.Command {
	var tenant, client, scopes, audiences string
	var introspect, feed, clearTTL, clearDepth bool
	var maxTTL time.Duration
	var maxDepth int
	verb, short := "revoke", "Take scope patterns, audiences, access rules or caps back from a client (exactly as granted)"
	use := `revoke --tenant T --client C [--scopes "a b:*"] [--audiences "https://x"] [--introspect] [--feed] [--max-task-ttl] [--max-depth]`
	if grant {
		verb, short = "grant", "Let a client put scopes matching these patterns, and these audiences, in its tasks; give access rules or caps"
		use = `grant --tenant T --client C [--scopes "a b:*"] [--audiences "https://x"] [--introspect] [--feed] [--max-task-ttl 1h] [--max-depth 2]`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scopeList, audienceList := strings.Fields(scopes), strings.Fields(audiences)
			var access []policy.Action
			if introspect {
				access = append(access, policy.ActIntrospect)
			}
			if feed {
				access = append(access, policy.ActFeed)
			}
			caps := maxTTL != 0 || maxDepth != 0 || clearTTL || clearDepth
			if len(scopeList) == 0 && len(audienceList) == 0 && len(access) == 0 && !caps {
				return &exitError{code: 2, err: fmt.Errorf("nothing to %s: give --scopes, --audiences, --introspect, --feed, --max-task-ttl or --max-depth", verb)}
			}
			if grant && (maxTTL < 0 || maxDepth < 0) {
				return &exitError{code: 2, err: fmt.Errorf("--max-task-ttl and --max-depth must be positive")}
			}
			ctx := cmd.Context()
			svc, t, done, err := a.policyService(ctx, tenant)
			if err != nil {
				return err
			}
			defer done()
			past := "revoked from"
			if grant {
				past = "granted to"
			}
			// Each kind of rule is its own audited change, in this order.
			if len(scopeList) > 0 || len(audienceList) > 0 {
				change := svc.Revoke
				if grant {
					change = svc.Grant
				}
				if err := change(ctx, t.ID, client, scopeList, audienceList, "cli"); err != nil {
					return err
				}
			}
			if len(access) > 0 {
				change := svc.RevokeAccess
				if grant {
					change = svc.GrantAccess
				}
				if err := change(ctx, t.ID, client, access, "cli"); err != nil {
					return err
				}
			}
			if caps {
				if grant {
					err = svc.SetCaps(ctx, t.ID, client, maxTTL, maxDepth, "cli")
				} else {
					err = svc.ClearCaps(ctx, t.ID, client, clearTTL, clearDepth, "cli")
				}
				if err != nil {
					return err
				}
			}
			view := policyChangeView{Tenant: string(t.Slug), ClientID: client, Change: verb,
				Scopes: nonNil(scopeList), Audiences: nonNil(audienceList), Access: []string{}}
			var b strings.Builder
			fmt.Fprintf(&b, "%s client %s in tenant %s:\n", past, client, t.Slug)
			if len(scopeList) > 0 {
				fmt.Fprintf(&b, "  scopes        %s\n", strings.Join(scopeList, " "))
			}
			if len(audienceList) > 0 {
				fmt.Fprintf(&b, "  audiences     %s\n", strings.Join(audienceList, " "))
			}
			for _, act := range access {
				view.Access = append(view.Access, string(act))
			}
			if len(access) > 0 {
				fmt.Fprintf(&b, "  access        %s\n", strings.Join(view.Access, " "))
			}
			if grant && maxTTL != 0 {
				view.MaxTaskTTL = int(maxTTL / time.Second)
				fmt.Fprintf(&b, "  max-task-ttl  %s\n", maxTTL)
			}
			if grant && maxDepth != 0 {
				view.MaxDepth = maxDepth
				fmt.Fprintf(&b, "  max-depth     %d\n", maxDepth)
			}
			if !grant && clearTTL {
				view.Caps = append(view.Caps, string(policy.ActMaxTaskTTL))
				b.WriteString("  max-task-ttl  (cap removed)\n")
			}
			if !grant && clearDepth {
				view.Caps = append(view.Caps, string(policy.ActMaxDepth))
				b.WriteString("  max-depth     (cap removed)\n")
			}
			return a.print(view, b.String())
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant slug (required)")
	f.StringVar(&client, "client", "", "the client's client_id (required)")
	f.StringVar(&scopes, "scopes", "", `space-separated scope patterns, e.g. "tickets:* mail:send" (orchestrators)`)
	f.StringVar(&audiences, "audiences", "", `space-separated audiences, absolute http(s) URIs (orchestrators)`)
	f.BoolVar(&introspect, "introspect", false, "the introspect rule (resource servers; given to each at creation)")
	f.BoolVar(&feed, "feed", false, "the revocation-feed rule (resource servers; given to each at creation)")
	if grant {
		f.DurationVar(&maxTTL, "max-task-ttl", 0, "cap the TTL of this orchestrator's tasks, e.g. 1h (tightens only)")
		f.IntVar(&maxDepth, "max-depth", 0, "cap the delegation depth of this orchestrator's agents (the tenant's lower maximum wins)")
	} else {
		f.BoolVar(&clearTTL, "max-task-ttl", false, "remove the orchestrator's task TTL cap")
		f.BoolVar(&clearDepth, "max-depth", false, "remove the orchestrator's depth cap")
	}
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
			tasks := false
			for _, r := range rules {
				if client != "" && r.ClientID != client {
					continue
				}
				views = append(views, policyRuleView{
					ClientID: r.ClientID, Kind: string(r.Action), Pattern: r.Pattern,
					GrantedAt: r.GrantedAt.UTC(), GrantedBy: r.GrantedBy,
				})
				if r.Action == policy.ActScope || r.Action == policy.ActAudience {
					tasks = true
				}
				fmt.Fprintf(&b, "%-36s  %-12s  %-40s  %s  %s\n", r.ClientID, r.Action, displayPattern(r),
					r.GrantedAt.UTC().Format(time.RFC3339), r.GrantedBy)
			}
			if !tasks {
				b.WriteString("no scope or audience grants: every task of ")
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
	_, svc, t, done, err := a.openGovernance(ctx, slug)
	return svc, t, done, err
}

// openGovernance opens the tenant service and the policy service on its
// pool, and resolves the tenant (none when slug is empty); done releases
// both.
func (a *app) openGovernance(ctx context.Context, slug string) (*tenants.Service, *policy.Service, *tenants.Tenant, func(), error) {
	tsvc, tdone, err := a.tenantService(ctx, false)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var t *tenants.Tenant
	if slug != "" {
		if t, err = tsvc.BySlug(ctx, slug); err != nil {
			tdone()
			return nil, nil, nil, nil, err
		}
	}
	svc, err := policy.New(ctx, tsvc.DB(), clock.System, a.logger())
	if err != nil {
		tdone()
		return nil, nil, nil, nil, err
	}
	return tsvc, svc, t, func() { svc.Close(); tdone() }, nil
}

// policyChangeView is a grant or revoke as the CLI prints it.
type policyChangeView struct {
	Tenant    string   `json:"tenant"`
	ClientID  string   `json:"client_id"`
	Change    string   `json:"change"`
	Scopes    []string `json:"scopes"`
	Audiences []string `json:"audiences"`
	// Access lists the introspect/feed rules changed.
	Access []string `json:"access"`
	// MaxTaskTTL (seconds) and MaxDepth are the caps set by a grant.
	MaxTaskTTL int `json:"max_task_ttl_seconds,omitempty"`
	MaxDepth   int `json:"max_depth,omitempty"`
	// Caps lists the caps a revoke removed.
	Caps []string `json:"caps,omitempty"`
}

// displayPattern shows a rule's object for people: a TTL cap as a duration.
func displayPattern(r policy.Rule) string {
	if r.Action == policy.ActMaxTaskTTL {
		if n, err := strconv.Atoi(r.Pattern); err == nil {
			return (time.Duration(n) * time.Second).String()
		}
	}
	return r.Pattern
}

// policyRuleView is one grant as the CLI prints it.
type policyRuleView struct {
	ClientID  string    `json:"client_id"`
	Kind      string    `json:"kind"`
	Pattern   string    `json:"pattern"`
	GrantedAt time.Time `json:"granted_at"`
	GrantedBy string    `json:"granted_by"`
}
