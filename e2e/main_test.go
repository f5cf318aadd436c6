// Package e2e drives the web console in headless Chromium against a whole
// chit server (chittest) the way a security engineer uses it: sign in, read a
// task's lineage, follow a denial to its trace, revoke an agent, export the
// audit trail and verify it offline with the chit CLI.
//
// One browser serves the package; each test gets its own browser context
// (cookies apart, so parallel tests against different servers on 127.0.0.1
// never share a session). Chromium is the one `make test` ensures
// (scripts/chromium, CHIT_CHROMIUM); without it every test fails. Full-page
// screenshots of the main pages go to $CHIT_SCREENSHOTS, by default
// <repo>/artifacts/screenshots/ (git-ignored), for a person to look at.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var (
	// browserCtx is the running browser; tests open tabs from it.
	browserCtx context.Context
	// cliBuilt is closed when the chit binary built from this checkout is
	// at cliPath, or building it failed with cliErr.
	cliBuilt chan struct{}
	cliPath  string
	cliErr   error
	// screenshotDir receives the pages' screenshots.
	screenshotDir string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	root, err := repoRoot()
	if err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "chit-e2e-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	screenshotDir = os.Getenv("CHIT_SCREENSHOTS")
	if screenshotDir == "" {
		screenshotDir = filepath.Join(root, "artifacts", "screenshots")
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		return fail(err)
	}

	// The CLI builds while the browser starts and the tests run: only the
	// audit test needs it, and it waits for it.
	cliPath, cliBuilt = filepath.Join(tmp, "chit"), make(chan struct{})
	buildCtx, stopBuild := context.WithCancel(context.Background())
	go func() {
		defer close(cliBuilt)
		cliErr = buildCLI(buildCtx, root, cliPath)
	}()
	defer func() { stopBuild(); <-cliBuilt }()

	ctx, stop, err := startBrowser(filepath.Join(tmp, "profile"))
	if err != nil {
		return fail(err)
	}
	defer stop()
	browserCtx = ctx
	return m.Run()
}

// repoRoot is the directory holding go.mod, above the test's working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func buildCLI(ctx context.Context, root, out string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/chit")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/chit: %w\n%s", err, msg)
	}
	return nil
}

// chromiumPath is the browser `make test` ensured (CHIT_CHROMIUM), or
// Debian's chromium.
func chromiumPath() (string, error) {
	path := os.Getenv("CHIT_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("no Chromium at %s: run `make test`, which installs Debian's chromium (scripts/chromium) "+
			"and passes its path in CHIT_CHROMIUM, or set CHIT_CHROMIUM to a Chromium binary", path)
	}
	return path, nil
}

// startBrowser launches headless Chromium with a fresh profile. The flags
// keep it off the network: this machine's is closed, and Chromium otherwise
// waits on its background connections.
func startBrowser(profile string) (context.Context, func(), error) {
	path, err := chromiumPath()
	if err != nil {
		return nil, nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(viewportWidth, viewportHeight),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	stop := func() { cancelBrowser(); cancelAlloc() }

	// The first Do starts the browser and binds its life to ctx, so it
	// cannot take a deadline; a timer ends a start that hangs instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err = <-started:
	case <-time.After(60 * time.Second):
		stop()
		err = errors.New("did not start within 60 s")
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("start Chromium (%s): %w", path, err)
	}
	return ctx, stop, nil
}
