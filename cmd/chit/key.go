package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage tenants' signing keys"}
	cmd.AddCommand(a.keyRotateCommand(), a.keyListCommand())
	return cmd
}

func (a *app) keyRotateCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "rotate --tenant T",
		Short: "Give a tenant a new signing key; the old one stays published until its tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, done, err := a.tenantService(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer done()
			t, k, err := svc.RotateKey(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("tenant %s now signs with key %s; the previous key stays published for %s\n",
				t.Slug, k.KeyID, t.KeyPublishWindow())
			return a.print(map[string]any{"tenant": t.Slug, "kid": k.KeyID, "created_at": k.CreatedAt.UTC()}, text)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant slug (required)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

func (a *app) keyListCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "list --tenant T",
		Short: "List a tenant's signing keys, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, done, err := a.tenantService(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			t, err := svc.BySlug(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			keys, err := svc.Keys().All(cmd.Context(), t.ID)
			if err != nil {
				return err
			}
			type keyView struct {
				KID          string     `json:"kid"`
				Status       string     `json:"status"`
				CreatedAt    time.Time  `json:"created_at"`
				RetiredAt    *time.Time `json:"retired_at,omitempty"`
				PublishUntil *time.Time `json:"publish_until,omitempty"`
			}
			views := make([]keyView, 0, len(keys))
			var b strings.Builder
			now := time.Now()
			for _, k := range keys {
				status := "active"
				switch {
				case k.RetiredAt != nil && k.PublishUntil.After(now):
					status = "retired, published"
				case k.RetiredAt != nil:
					status = "retired"
				}
				views = append(views, keyView{k.KeyID, status, k.CreatedAt.UTC(), k.RetiredAt, k.PublishUntil})
				fmt.Fprintf(&b, "%s  %-19s created %s\n", k.KeyID, status, k.CreatedAt.UTC().Format(time.RFC3339))
			}
			return a.print(views, b.String())
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant slug (required)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}
