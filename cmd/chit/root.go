package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
)

// app is what every command shares: its environment and output mode.
type app struct {
	env    *Env
	asJSON bool
}

func newRootCommand(env *Env) *cobra.Command {
	a := &app{env: env}
	root := &cobra.Command{
		Use:           "chit",
		Short:         "chit issues ephemeral, task-scoped credentials to AI agents",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().BoolVar(&a.asJSON, "json", false, "print results as JSON")
	root.AddCommand(
		a.serveCommand(),
		a.migrateCommand(),
		a.tenantCommand(),
		a.keyCommand(),
		a.clientCommand(),
		a.auditCommand(),
		a.policyCommand(),
		a.userCommand(),
	)
	return root
}

func (a *app) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(a.env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (a *app) databaseURL() (string, error) {
	u := a.env.Getenv("DATABASE_URL")
	if u == "" {
		return "", fmt.Errorf("DATABASE_URL is not set (make run and make test set it up for you)")
	}
	return u, nil
}

// openDB connects as the application role, as the server does.
func (a *app) openDB(ctx context.Context) (*pgstore.DB, error) {
	u, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	return pgstore.Open(ctx, u, pgstore.Options{})
}

// tenantService opens the database and, when the command handles private
// keys, the key-encryption key.
func (a *app) tenantService(ctx context.Context, needKEK bool) (*tenants.Service, func(), error) {
	var kek *keyring.KEK
	if needKEK {
		var err error
		if kek, err = keyring.LoadKEK(a.env.Getenv("CHIT_KEK_FILE")); err != nil {
			return nil, nil, err
		}
	}
	db, err := a.openDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	return tenants.NewService(db, keyring.New(db, kek, clock.System), clock.System), db.Close, nil
}

// print writes v as JSON with --json, else the human text.
func (a *app) print(v any, text string) error {
	if a.asJSON {
		enc := json.NewEncoder(a.env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprint(a.env.Stdout, text)
	return err
}
