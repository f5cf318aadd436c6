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
	cmd.AddCommand(a.userCreateCommand())
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
			svc, t, done, err := a.userService(ctx, tenant)
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

// userService resolves the tenant and opens the user service (with the
// governance it keeps roles in); done releases both.
func (a *app) userService(ctx context.Context, slug string) (*users.Service, *tenants.Tenant, func(), error) {
	tsvc, tdone, err := a.tenantService(ctx, false)
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := tsvc.BySlug(ctx, slug)
	if err != nil {
		tdone()
		return nil, nil, nil, err
	}
	gov, err := policy.New(ctx, tsvc.DB(), clock.System, a.logger())
	if err != nil {
		tdone()
		return nil, nil, nil, err
	}
	svc, err := users.New(users.Config{DB: tsvc.DB(), Clock: clock.System, Roles: gov})
	if err != nil {
		gov.Close()
		tdone()
		return nil, nil, nil, err
	}
	return svc, t, func() { gov.Close(); tdone() }, nil
}
