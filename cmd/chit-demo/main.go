// Command chit-demo drives a realistic workload against a running chit so
// that its console comes alive: orchestrators create tasks for people, spawn
// agents that register, exchange, heartbeat, renew and delegate to narrower
// sub-agents; resource servers introspect their tokens; some requests are
// refused (a scope outside the grant, a sub-agent asking for more than it
// holds, a replayed launch token, a renewal after revocation), some agents
// are revoked or go silent, and most tasks complete. It prints one line per
// task (identifiers only, never a token).
//
// It talks to chit over HTTP only, as the clients that scripts/demo
// registered with the chit CLI (`make demo` runs both). Its helper commands
// serve that script:
//
//	chit-demo [--base-url URL] [--tenant T] [--keys DIR] [--duration D] [--rate R]
//	chit-demo clients                                the clients to register, tab-separated:
//	                                                 name, kind, scope patterns, audiences ("-": none)
//	chit-demo keygen --private FILE --public FILE    a new Ed25519 key pair as JWKs
//	chit-demo check --client NAME [--base-url URL] [--tenant T] [--keys DIR]
//	                                                 exit 0 when the tenant accepts the client's key,
//	                                                 3 when it does not know it (registration needed)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	exitUsage         = 2
	exitUnknownClient = 3
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cmd, rest := "run", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runCommand(rest, stdout, stderr)
	case "clients":
		err = clientsCommand(rest, stdout)
	case "keygen":
		err = keygenCommand(rest)
	case "check":
		err = checkCommand(rest)
	default:
		err = usageError{fmt.Errorf("unknown command %q (run, clients, keygen, check)", cmd)}
	}
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "chit-demo:", err)
		return exitUsage
	case errors.Is(err, errUnknownClient):
		fmt.Fprintln(stderr, "chit-demo:", err)
		return exitUnknownClient
	default:
		fmt.Fprintln(stderr, "chit-demo:", err)
		return 1
	}
}

// usageError is a command line that cannot be run.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// target is where the demo works: the server, the tenant and the key directory.
type target struct {
	baseURL, tenant, keys string
}

func (t *target) flags(fs *flag.FlagSet) {
	fs.StringVar(&t.baseURL, "base-url", "http://127.0.0.1:8080", "the running chit server")
	fs.StringVar(&t.tenant, "tenant", "demo", "the tenant to drive")
	fs.StringVar(&t.keys, "keys", "", "directory of the registered clients' keys and ids (default .data/demo/TENANT)")
}

func (t *target) resolve() {
	if t.keys == "" {
		t.keys = filepath.Join(".data", "demo", t.tenant)
	}
}

func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // errors are reported once, by realMain
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fmt.Fprintf(os.Stderr, "usage: %s [flags]\n", fs.Name())
			fs.PrintDefaults()
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func runCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chit-demo", flag.ContinueOnError)
	var t target
	t.flags(fs)
	dur := fs.Duration("duration", 0, "how long to start new tasks (0: until Ctrl-C); tasks in flight then finish")
	rate := fs.Float64("rate", 0.5, "new tasks per second")
	if err := parse(fs, args); err != nil {
		return err
	}
	t.resolve()
	if *rate <= 0 || *rate > 50 {
		return usageError{fmt.Errorf("--rate must be above 0 and at most 50 tasks per second")}
	}
	if *dur < 0 {
		return usageError{fmt.Errorf("--duration must not be negative")}
	}

	// The first Ctrl-C stops new tasks and lets those in flight finish; a second stops at once.
	ctx, abort := context.WithCancel(context.Background())
	defer abort()
	stop, stopNew := context.WithCancel(ctx)
	defer stopNew()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		select {
		case <-signals:
			stopNew()
		case <-ctx.Done():
			return
		}
		select {
		case <-signals:
			abort()
		case <-ctx.Done():
		}
	}()

	cfg := config{BaseURL: t.baseURL, Tenant: t.tenant, KeysDir: t.keys, Duration: *dur, Rate: *rate, Step: defaultStep,
		Out: stdout, Log: stderr}
	return play(ctx, stop, cfg)
}

// play runs the workload of cfg and prints what it did.
func play(ctx, stop context.Context, cfg config) error {
	d, err := newDriver(ctx, cfg)
	if err != nil {
		return err
	}
	until := "Ctrl-C"
	if cfg.Duration > 0 {
		until = cfg.Duration.String()
	}
	fmt.Fprintf(cfg.Log, "chit-demo: driving tenant %s at %s: %d orchestrators, a new task every %s, until %s\n",
		cfg.Tenant, cfg.BaseURL, len(d.orchs), (time.Duration(float64(time.Second) / cfg.Rate)).Round(100*time.Millisecond), until)
	c, err := d.run(ctx, stop)
	fmt.Fprintf(cfg.Log, "chit-demo: %d tasks: %d completed, %d with a revocation, %d left silent, %d interrupted, %d failed; %d refusals met\n",
		c.Tasks, c.Completed, c.Revoked, c.Silent, c.Interrupted, c.Failed, c.Refusals)
	return err
}

func clientsCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chit-demo clients", flag.ContinueOnError)
	if err := parse(fs, args); err != nil {
		return err
	}
	// "-" stands for none: bash's read collapses empty tab-separated fields.
	for _, c := range demoClients() {
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", c.Name, c.Kind, orDash(c.Scopes), orDash(c.Audiences))
	}
	return nil
}

func keygenCommand(args []string) error {
	fs := flag.NewFlagSet("chit-demo keygen", flag.ContinueOnError)
	private := fs.String("private", "", "where to write the private JWK (mode 0600)")
	public := fs.String("public", "", "where to write the public JWK")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *private == "" || *public == "" {
		return usageError{fmt.Errorf("keygen needs --private FILE and --public FILE")}
	}
	return writeKeyPair(*private, *public)
}

// errUnknownClient: the tenant does not accept the stored client (never
// registered in this database, or its key replaced).
var errUnknownClient = errors.New("the tenant does not accept this client")

func checkCommand(args []string) error {
	fs := flag.NewFlagSet("chit-demo check", flag.ContinueOnError)
	var t target
	t.flags(fs)
	name := fs.String("client", "", "the client's name (its files in the key directory)")
	if err := parse(fs, args); err != nil {
		return err
	}
	t.resolve()
	if *name == "" {
		return usageError{fmt.Errorf("check needs --client NAME")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := dial(ctx, t.baseURL, t.tenant)
	if err != nil {
		return err
	}
	return checkClient(ctx, a, t.keys, *name)
}

// checkClient authenticates the stored client once.
func checkClient(ctx context.Context, a *api, dir, name string) error {
	c, err := loadClient(dir, name)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnknownClient, err)
	}
	_, err = a.clientToken(ctx, c)
	if r, ok := refusedWith(err, http.StatusUnauthorized); ok {
		return fmt.Errorf("%w: %s (%s)", errUnknownClient, name, r.Code)
	}
	return err
}
