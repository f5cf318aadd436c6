package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/chitdev/chit/internal/clock"
	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/migrations"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/oauth/inventory"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
	"github.com/chitdev/chit/web"
	"github.com/chitdev/chit/worker"
)

// demoTenant is created on first run with --demo, so a new user sees a
// working issuer at once.
var demoTenant = tenants.CreateParams{Slug: "demo", TrustDomain: "demo.chit.local"}

func (a *app) serveCommand() *cobra.Command {
	var addr, baseURL string
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the API, OAuth endpoints, console and metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), addr, baseURL, demo)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&baseURL, "base-url", "", "public URL issuers are built from, shared by all replicas (default http://ADDR)")
	cmd.Flags().BoolVar(&demo, "demo", false, "on an empty database, create the demo tenant and print its URLs")
	return cmd
}

func (a *app) serve(ctx context.Context, addr, baseURL string, demo bool) error {
	log := a.logger()
	if baseURL != "" {
		if _, err := web.ParseBaseURL(baseURL); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	kek, err := keyring.LoadKEK(a.env.Getenv("CHIT_KEK_FILE"))
	if err != nil {
		return err
	}
	dbURL, err := a.databaseURL()
	if err != nil {
		return err
	}
	// Enough connections for every request in flight to hold one; no
	// request ever needs two at once.
	db, err := pgstore.Open(ctx, dbURL, pgstore.Options{MaxConns: 32})
	if err != nil {
		return err
	}
	defer db.Close()
	if pending, err := migrations.Pending(ctx, db.Pool); err != nil || pending {
		return fmt.Errorf("the database schema is not current: run `chit migrate` first")
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	base := baseURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}

	keys := keyring.New(db, kek, clock.System)
	svc := tenants.NewService(db, keys, clock.System)
	gov, err := policy.New(ctx, db, clock.System, log)
	if err != nil {
		ln.Close()
		return fmt.Errorf("load governance policy: %w", err)
	}
	defer gov.Close()
	credentials := oauth.NewService(oauth.Config{DB: db, Keys: keys, Clock: clock.System, Policy: oauth.PolicyGovernor{P: gov},
		Logger: log, BaseURL: base})
	people, err := users.New(users.Config{DB: db, Clock: clock.System, Roles: gov})
	if err != nil {
		ln.Close()
		return err
	}
	srv, err := web.New(web.Config{BaseURL: base, Version: version}, web.Deps{
		OAuth:       credentials,
		Tenants:     svc,
		Keys:        keys,
		Ready:       readiness(db),
		Outstanding: credentials.OutstandingIn(svc.List),
		Logger:      log,
		Console: &web.ConsoleDeps{DB: db, Users: people, Policy: gov, Inventory: inventory.New(db, clock.System),
			Admin: svc, AllKeys: keys.All},
	})
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("base_url", base), slog.String("version", version))
	if demo {
		if err := a.ensureDemo(ctx, svc, people, base); err != nil {
			ln.Close()
			return err
		}
	}
	jobs, err := worker.New(worker.Deps{DB: db, Keys: keys, Pool: db.Pool, Tenants: svc, OAuth: credentials, Users: people, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	if err := jobs.Start(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("start background jobs: %w", err)
	}
	if a.env.Ready != nil {
		a.env.Ready <- ln.Addr().String()
	}
	err = srv.Serve(ctx, ln)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if stopErr := jobs.Stop(stopCtx); stopErr != nil {
		log.Warn("background jobs did not stop cleanly", "error", stopErr)
	}
	log.Info("stopped")
	return err
}

// readiness reports whether this replica can serve requests.
func readiness(db *pgstore.DB) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := db.Pool.Ping(ctx); err != nil {
			return errors.New("database unreachable")
		}
		pending, err := migrations.Pending(ctx, db.Pool)
		if err != nil {
			return errors.New("cannot read the schema version")
		}
		if pending {
			return errors.New("migrations pending")
		}
		return nil
	}
}

// ensureDemo creates the demo tenant when the database has no tenant yet,
// and prints where its issuer is.
func (a *app) ensureDemo(ctx context.Context, svc *tenants.Service, people *users.Service, base string) error {
	list, err := svc.List(ctx)
	if err != nil {
		return err
	}
	created := false
	if len(list) == 0 {
		_, err := svc.Create(ctx, demoTenant)
		// Another replica starting at the same moment may have won.
		if err != nil && fault.KindOf(err) != fault.Conflict {
			return fmt.Errorf("create demo tenant: %w", err)
		}
		created = err == nil
	}
	t, err := svc.BySlug(ctx, demoTenant.Slug)
	if fault.KindOf(err) == fault.NotFound {
		return nil // tenants exist, none of them the demo
	} else if err != nil {
		return err
	}
	verb := "demo tenant"
	if created {
		verb = "created demo tenant"
	}
	issuer := t.Issuer(base)
	fmt.Fprintf(a.env.Stdout, "%s %q (trust domain %s)\n  issuer:    %s\n  discovery: %s/.well-known/oauth-authorization-server\n  jwks:      %s/jwks.json\n",
		verb, t.Slug, t.TrustDomain.Name(), issuer, issuer, issuer)
	return a.ensureDemoAdmin(ctx, people, t, base)
}

// demoAdmin is the first console user of the demo tenant.
const demoAdmin users.Email = "admin@demo.chit.test"

// ensureDemoAdmin creates the demo tenant's first console admin with a
// random password, printed this once: only its hash is kept. An existing
// admin is left alone (make another with `chit user create`).
func (a *app) ensureDemoAdmin(ctx context.Context, people *users.Service, t *tenants.Tenant, base string) error {
	if _, err := people.ByEmail(ctx, demoAdmin); err == nil {
		fmt.Fprintf(a.env.Stdout, "  console:   %s/console/ (user %s; its password was printed when it was created)\n", base, demoAdmin)
		return nil
	} else if fault.KindOf(err) != fault.NotFound {
		return err
	}
	password := randomPassword()
	_, created, err := people.Create(ctx, users.CreateParams{TenantID: t.ID, Email: demoAdmin, Password: password,
		Role: policy.RoleAdmin, Actor: "operator:demo"})
	if err != nil {
		return fmt.Errorf("create the demo admin: %w", err)
	}
	if created {
		fmt.Fprintf(a.env.Stdout, "  console:   %s/console/\n    user:     %s\n    password: %s   (shown once; only its hash is stored)\n",
			base, demoAdmin, password)
	}
	return nil
}

// randomPassword is 26 base32 characters: 128 bits from crypto/rand.
func randomPassword() string { return rand.Text() }
