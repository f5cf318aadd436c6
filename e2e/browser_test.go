package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
)

// step bounds every browser action: a page that never shows what the test
// waits for fails the test instead of hanging it.
const step = 10 * time.Second

// tab is one test's browser tab, in a browser context of its own (its own
// cookies), looking at one chit server.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string // the server's address, http://127.0.0.1:port
}

func openTab(t *testing.T, env *chittest.Env) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first Do opens the tab and ties its event loop to the context it
	// is given, so it runs on ctx itself, bounded by a timer instead.
	opened := make(chan error, 1)
	go func() { opened <- chromedp.Do(ctx) }()
	select {
	case err := <-opened:
		require.NoError(t, err, "open a tab")
	case <-time.After(step):
		cancel()
		t.Fatalf("opening a tab took more than %s", step)
	}
	tb := &tab{t: t, ctx: ctx, base: env.Addr}
	tb.do(chromedp.EmulateViewport(viewportWidth, viewportHeight))
	return tb
}

// testID selects the elements with a data-testid.
func testID(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// do runs actions that return nothing, within step.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("on %s: %v", tb.location(), err)
	}
}

// value runs an action that returns a value, within step.
func value[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("on %s: %v", tb.location(), err)
	}
	return v
}

// location is the tab's URL without the server's address, for messages.
func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown page)"
	}
	return strings.TrimPrefix(loc, tb.base)
}

// path is where the tab is, without the server's address.
func (tb *tab) path() string {
	tb.t.Helper()
	return strings.TrimPrefix(value(tb, chromedp.Location()), tb.base)
}

// visit loads a console path as if typed in the address bar and requires
// the page to load with status.
func (tb *tab) visit(path string, status int) {
	tb.t.Helper()
	resp := value(tb, chromedp.NavigateResponse(tb.base+path))
	require.Equal(tb.t, status, int(resp.Status), "GET %s", path)
}

// follow clicks an element that leads to another page (a link, a submit
// button) and requires the page it leads to to load with status.
func (tb *tab) follow(sel chromedp.CSS, status int) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, step)
	defer cancel()
	from := tb.location()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	require.NoError(tb.t, err, "click %s on %s", sel, from)
	require.Equal(tb.t, status, int(resp.Status), "after a click on %s on %s", sel, from)
}

// text is the text of the first element of sel once it is visible, with
// runs of white space as one space (textContent: as written, not as styled).
func (tb *tab) text(sel chromedp.CSS) string {
	tb.t.Helper()
	return strings.Join(strings.Fields(value(tb, chromedp.TextContent(sel, chromedp.NodeVisible))), " ")
}

// count is how many elements match sel now.
func (tb *tab) count(sel chromedp.CSS) int {
	tb.t.Helper()
	return value(tb, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(string(sel))+`).length`))
}

// attr is an attribute of the first element of sel.
func (tb *tab) attr(sel chromedp.CSS, name string) string {
	tb.t.Helper()
	res := value(tb, chromedp.AttributeValue(sel, name))
	if !res.Exists {
		tb.t.Fatalf("%s has no %s attribute on %s", sel, name, tb.location())
	}
	return res.Value
}

// title is the page's heading (ui.PageHeader).
func (tb *tab) title() string {
	tb.t.Helper()
	return tb.text(testID("page-title"))
}

// The tab's viewport: a laptop screen.
const viewportWidth, viewportHeight = 1280, 800

// screenshot writes a full-page PNG of the tab for a person to review. The
// viewport grows to the page's height for it, so what is sized to the
// screen (the sidebar) is drawn as a person scrolling would see it.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	height := value(tb, chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
	tb.do(chromedp.EmulateViewport(viewportWidth, max(height, viewportHeight)))
	png := value(tb, chromedp.CaptureScreenshot())
	tb.do(chromedp.EmulateViewport(viewportWidth, viewportHeight))
	require.NoError(tb.t, os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644))
}

// login signs in through the form and requires the page it lands on to
// load.
func (tb *tab) login(email, password string) {
	tb.t.Helper()
	tb.visit("/console/login", http.StatusOK)
	tb.do(
		chromedp.SendKeys(testID("email"), email),
		chromedp.SendKeys(testID("password"), password),
	)
	tb.follow(testID("login-submit"), http.StatusOK)
}

// download clicks an element that downloads a file (the user's path: a
// link or a form's button) and returns the file once Chromium has saved it.
func (tb *tab) download(sel chromedp.CSS) []byte {
	tb.t.Helper()
	dir := tb.t.TempDir()
	ctx, cancel := context.WithTimeout(tb.ctx, step)
	defer cancel()
	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior:         browser.SetDownloadBehaviorBehaviorAllowAndName, // saved as dir/<guid>
		BrowserContextID: chromedp.FromContext(tb.ctx).BrowserContextID,
		DownloadPath:     dir,
		EventsEnabled:    new(true),
	})
	require.NoError(tb.t, err)
	// Subscribed before the click, so no event is missed; other tests'
	// downloads in the same browser come from other servers and are skipped.
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	require.NoError(tb.t, chromedp.Do(ctx, chromedp.Click(sel)), "click %s", sel)
	guid := ""
	for ev, err := range begins {
		require.NoError(tb.t, err, "no download began after a click on %s", sel)
		if strings.HasPrefix(ev.URL, tb.base+"/") {
			guid = ev.GUID
			break
		}
	}
	require.NotEmpty(tb.t, guid, "no download began after a click on %s", sel)
	for ev, err := range progress {
		require.NoError(tb.t, err, "the download from %s did not complete", sel)
		if ev.GUID != guid {
			continue
		}
		require.NotEqual(tb.t, browser.DownloadProgressStateCanceled, ev.State, "the download from %s was canceled", sel)
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, guid))
	require.NoError(tb.t, err)
	return data
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
