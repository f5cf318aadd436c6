package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
)

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage console users"}
	cmd.AddCommand(a.userCreateCommand(), a.userListCommand(), a.userDisableCommand(), a.userPasswordCommand())
	return cmd
}

func (a *app) userCreateCommand() *cobra.Command {
	var tenant, email, role, passwordFile string
	cmd := &cobra.Command{
		Use:   "create --tenant T --email E --role admin|auditor|viewer",
		Short: "Create a console user (password from stdin or --password-file), or give an existing one a role in another tenant",
		Long: "Creates a console user of the tenant with a role. The password is read from the first line of\n" +
			"--password-file or of standard input, never from an argument. When the address already has a\n" +
			"user, that user gets the role in this tenant and keeps their password (none is read).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			addr, err := users.ParseEmail(email)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			r, err := policy.ParseRole(role)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			svc, _, t, done, err := a.userService(ctx, tenant)
			if err != nil {
				return err
			}
			defer done()
			password := ""
			if _, err := svc.ByEmail(ctx, addr); fault.KindOf(err) == fault.NotFound {
				if password, err = a.readPassword(passwordFile); err != nil {
					return &exitError{code: 2, err: err}
				}
				if err := users.CheckPassword(password); err != nil {
					return &exitError{code: 2, err: err}
				}
			} else if err != nil {
				return err
			}
			u, created, err := svc.Create(ctx, users.CreateParams{TenantID: t.ID, Email: addr, Password: password, Role: r, Actor: "operator:cli"})
			if err != nil {
				return err
			}
			verb := "created console user"
			if !created {
				verb = "existing console user given a role:"
			}
			text := fmt.Sprintf("%s %s (%s) — %s of tenant %s\n", verb, u.Email, u.ID, r, t.Slug)
			return a.print(map[string]any{"user_id": u.ID, "email": string(u.Email), "tenant": t.Slug.String(),
				"role": string(r), "created": created}, text)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant slug (required)")
	cmd.Flags().StringVar(&email, "email", "", "the user's e-mail address (required)")
	cmd.Flags().StringVar(&role, "role", "", "admin, auditor or viewer (required)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from this file's first line instead of standard input")
	for _, f := range []string{"tenant", "email", "role"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// readPassword takes the first line of the file, or of standard input.
func (a *app) readPassword(file string) (string, error) {
	var r io.Reader = a.env.Stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	} else if r == nil {
		return "", fmt.Errorf("no password: pipe it on standard input or use --password-file")
	}
	line, err := bufio.NewReader(io.LimitReader(r, users.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password: pipe it on standard input or use --password-file")
	}
	return line, nil
}

// userService resolves the tenant (none when slug is empty) and opens the
// user service with the governance it keeps roles in; done releases both.
func (a *app) userService(ctx context.Context, slug string) (*users.Service, *policy.Service, *tenants.Tenant, func(), error) {
	tsvc, gov, t, done, err := a.openGovernance(ctx, slug)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	svc, err := users.New(users.Config{DB: tsvc.DB(), Clock: clock.System, Roles: gov})
	if err != nil {
		done()
		return nil, nil, nil, nil, err
	}
	return svc, gov, t, done, nil
}

func (a *app) userListCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "list --tenant T",
		Short: "List a tenant's console users and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, gov, t, done, err := a.userService(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			defer done()
			members, err := svc.Members(cmd.Context(), t.ID)
			if err != nil {
				return err
			}
			type view struct {
				UserID   string `json:"user_id"`
				Email    string `json:"email"`
				Role     string `json:"role"`
				Disabled bool   `json:"disabled"`
			}
			views := make([]view, 0, len(members))
			var b strings.Builder
			for _, m := range members {
				role, _ := gov.ConsoleRole(t.ID, m.ID.String())
				v := view{UserID: m.ID.String(), Email: string(m.Email), Role: string(role), Disabled: m.Disabled}
				views = append(views, v)
				state := ""
				if m.Disabled {
					state = "  (disabled)"
				}
				fmt.Fprintf(&b, "%s  %-8s %s%s\n", v.UserID, orNone(v.Role), v.Email, state)
			}
			return a.print(views, b.String())
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant slug (required)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (a *app) userDisableCommand() *cobra.Command {
	var email string
	cmd := &cobra.Command{
		Use:   "disable --email E",
		Short: "Disable a console user: their sessions end now and no sign-in succeeds again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := users.ParseEmail(email)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			svc, _, _, done, err := a.userService(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer done()
			u, err := svc.Disable(cmd.Context(), addr, "operator:cli")
			if err != nil {
				return err
			}
			return a.print(map[string]any{"user_id": u.ID, "email": string(u.Email), "disabled": true},
				fmt.Sprintf("disabled console user %s (%s); their sessions have ended\n", u.Email, u.ID))
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the user's e-mail address (required)")
	_ = cmd.MarkFlagRequired("email")
	return cmd
}

func (a *app) userPasswordCommand() *cobra.Command {
	var email, passwordFile string
	cmd := &cobra.Command{
		Use:   "password --email E",
		Short: "Set a console user's password (stdin or --password-file); their sessions end and any lock clears",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := users.ParseEmail(email)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			password, err := a.readPassword(passwordFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := users.CheckPassword(password); err != nil {
				return &exitError{code: 2, err: err}
			}
			svc, _, _, done, err := a.userService(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer done()
			u, err := svc.SetPassword(cmd.Context(), addr, password, "operator:cli")
			if err != nil {
				return err
			}
			return a.print(map[string]any{"user_id": u.ID, "email": string(u.Email)},
				fmt.Sprintf("new password set for %s (%s); their sessions have ended\n", u.Email, u.ID))
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the user's e-mail address (required)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from this file's first line instead of standard input")
	_ = cmd.MarkFlagRequired("email")
	return cmd
}
