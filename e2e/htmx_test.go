package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/tenants/policy"
)

// The console's htmx enhancement, under the console's own
// Content-Security-Policy: lists that refresh themselves every 5 s, filters
// that swap the list in place, the audit page's "Verify chain now". The
// tests watch the tab's console, so a CSP violation or a script error on a
// page they touch fails them.

// refreshWait bounds a wait for a list's next refresh: one 5 s period, the
// request, and slack for a busy machine.
const refreshWait = 12 * time.Second

// waitUntil polls a JavaScript predicate from Go until it is true, for at
// most within. (chromedp.Poll builds its predicate with new Function, which
// the console's CSP forbids: it would fail, and report a violation.)
func (tb *tab) waitUntil(within time.Duration, predicate, format string, args ...any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, within)
	defer cancel()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+predicate+`)`))
		if err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.t.Fatalf("not within %s on %s: %s (last error: %v)", within, tb.location(), fmt.Sprintf(format, args...), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// markPage leaves a random mark on the page's window; a full page load
// clears it, an htmx swap does not.
func (tb *tab) markPage() string {
	tb.t.Helper()
	mark := rand.Text()
	tb.do(chromedp.Evaluate[chromedp.Void](`window.chitE2EMark = ` + jsString(mark)))
	return mark
}

// requireSamePage requires the page marked by markPage still to be the one
// shown: nothing loaded a new document since.
func (tb *tab) requireSamePage(mark, after string) {
	tb.t.Helper()
	got := value(tb, chromedp.Evaluate[string](`window.chitE2EMark || ""`))
	require.Equal(tb.t, mark, got, "the page was loaded anew (not swapped in place) after %s", after)
}

// consoleWatch is what the pages of a tab wrote to their console: calls of
// the console API, uncaught exceptions, and the browser's own log, where
// Chromium reports what the Content-Security-Policy refused.
type consoleWatch struct {
	tb   *tab
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
	seen chan struct{} // signalled on every message, for flush
}

// watchConsole starts collecting before the next navigation. It also has
// every new document report its securitypolicyviolation events as console
// errors, so a violation is seen even if the browser's log entry is not.
func (tb *tab) watchConsole() *consoleWatch {
	tb.t.Helper()
	cw := &consoleWatch{tb: tb, seen: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(tb.ctx)
	tb.t.Cleanup(cancel)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			cw.mu.Lock()
			cw.msgs = append(cw.msgs, m)
			cw.mu.Unlock()
			select {
			case cw.seen <- struct{}{}:
			default:
			}
		}
	}()
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `document.addEventListener("securitypolicyviolation", e => console.error(
				"securitypolicyviolation: " + e.violatedDirective + " blocked " + (e.blockedURI || "(inline)") +
				" in " + e.sourceFile + ":" + e.lineNumber));`,
		})
		return err
	}))
	return cw
}

// problems are the errors and warnings written so far. It first writes a
// marker of its own and waits for it, so that every message the page wrote
// before the call has arrived.
func (cw *consoleWatch) problems() []string {
	tb := cw.tb
	tb.t.Helper()
	flush := "chit-e2e-flush " + rand.Text()
	tb.do(chromedp.Evaluate[chromedp.Void](`console.debug(` + jsString(flush) + `)`))
	deadline := time.After(step)
	for {
		cw.mu.Lock()
		var out []string
		flushed := false
		for _, m := range cw.msgs {
			switch {
			case m.Text == flush:
				flushed = true
			case m.IsException(), m.Type == chromedp.ConsoleError, m.Type == chromedp.ConsoleWarning, m.Type == "assert":
				where := m.URL
				if m.Source != "" {
					where = m.Source + " " + where
				}
				out = append(out, m.String()+" ("+strings.TrimSpace(where)+")")
			}
		}
		cw.mu.Unlock()
		if flushed {
			return out
		}
		select {
		case <-cw.seen:
		case <-deadline:
			tb.t.Fatalf("the console's messages did not arrive within %s", step)
		}
	}
}

// requireClean requires no error, warning, exception or CSP violation on
// any page of the tab so far.
func (cw *consoleWatch) requireClean() {
	cw.tb.t.Helper()
	require.Empty(cw.tb.t, cw.problems(), "the pages wrote errors to the console")
}

// requireHtmx requires htmx to have loaded on the page with the console's
// configuration from <meta name="htmx-config"> (no eval: the CSP forbids it).
func (tb *tab) requireHtmx() {
	tb.t.Helper()
	tb.waitUntil(step, `typeof htmx === "object"`, "htmx is loaded")
	cfg := value(tb, chromedp.Evaluate[struct {
		AllowEval, AllowScriptTags, IncludeIndicatorStyles bool
		HistoryCacheSize                                   int
	}](`({AllowEval: htmx.config.allowEval, AllowScriptTags: htmx.config.allowScriptTags,
		IncludeIndicatorStyles: htmx.config.includeIndicatorStyles, HistoryCacheSize: htmx.config.historyCacheSize})`))
	require.False(tb.t, cfg.AllowEval, "htmx runs without eval on %s", tb.location())
	require.False(tb.t, cfg.AllowScriptTags)
	require.False(tb.t, cfg.IncludeIndicatorStyles, "htmx injects no inline <style>")
	require.Zero(tb.t, cfg.HistoryCacheSize, "htmx keeps no copy of tenant pages in storage")
}

// refreshed starts counting htmx's settled swaps of the element with id and
// returns, as a JavaScript predicate, whether one has happened since. (A
// refreshing list is morphed in place, so the element itself stays.)
func (tb *tab) refreshed(id string) string {
	tb.t.Helper()
	counter := "chitE2ESwaps_" + strings.ReplaceAll(id, "-", "_")
	tb.do(chromedp.Evaluate[chromedp.Void](`(() => {
		window.` + counter + ` = 0;
		document.addEventListener("htmx:afterSettle", e => {
			const el = e.detail && e.detail.elt;
			if (el && el.id === ` + jsString(id) + `) window.` + counter + `++;
		});
	})()`))
	return `window.` + counter + ` > 0`
}

// agentStatusKind is the JavaScript for the status badge's kind in an
// agent's row, "" when the row is not shown.
func agentStatusKind(id uuid.UUID) string {
	return `document.querySelector(` + jsString(string(agentRow(id))+` [data-testid="agent-status"] [data-testid="status"]`) + `)?.dataset.kind ?? ""`
}

// revokeAgent revokes an agent through the API, as the orchestrator.
func (w *world) revokeAgent(t *testing.T, a *chittest.Agent) {
	t.Helper()
	resp := w.tn.PostJSON("/v1/revocations", w.orch, map[string]string{"level": "agent", "target": a.ID.String(), "reason": "e2e"})
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
}

func TestAgentsListRefreshesInPlace(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)
	cw := tb.watchConsole()
	tb.login(w.admin, chittest.ConsolePassword)
	tb.visit(w.consolePath("agents"), http.StatusOK)
	tb.requireHtmx()
	mark := tb.markPage()

	// An agent registers while the list is open: it shows up on its own.
	d := w.tn.Register(w.tn.LaunchToken(w.orch, w.task, ""))
	d.Exchange("")
	tb.waitUntil(refreshWait, `document.querySelector(`+jsString(string(agentRow(d.ID)))+`)`, "the new agent %s is listed", d.ID)
	require.Equal(t, "live", value(tb, chromedp.Evaluate[string](agentStatusKind(d.ID))))
	tb.requireSamePage(mark, "the list refreshed")

	// The swapped-in list keeps refreshing: a revocation made through the
	// API shows on the next one.
	require.Equal(t, "live", value(tb, chromedp.Evaluate[string](agentStatusKind(w.b.ID))))
	w.revokeAgent(t, w.b)
	tb.waitUntil(refreshWait, agentStatusKind(w.b.ID)+` === "revoked"`, "agent %s shows revoked", w.b.ID)
	require.Equal(t, "live", value(tb, chromedp.Evaluate[string](agentStatusKind(w.a.ID))), "and only it")
	tb.requireSamePage(mark, "the list refreshed again")
	require.Equal(t, w.consolePath("agents"), tb.path(), "refreshing leaves the address alone")
	cw.requireClean()
}

func TestOverviewFiguresRefreshInPlace(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)
	cw := tb.watchConsole()
	tb.login(w.admin, chittest.ConsolePassword) // lands on the overview
	tb.requireHtmx()
	mark := tb.markPage()
	liveAgents := `document.querySelector('[data-testid="stat-live-agents"] [data-testid="stat-value"]').textContent.trim()`
	require.Equal(t, "3", value(tb, chromedp.Evaluate[string](liveAgents)))

	d := w.tn.Register(w.tn.LaunchToken(w.orch, w.task, ""))
	d.Exchange("")
	tb.waitUntil(refreshWait, liveAgents+` === "4"`, "the overview counts the new agent")
	tb.requireSamePage(mark, "the figures refreshed")
	cw.requireClean()
}

func TestFilterSwapsTheListInPlace(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.revokeAgent(t, w.b)
	tb := openTab(t, w.env)
	cw := tb.watchConsole()
	tb.login(w.admin, chittest.ConsolePassword)
	tb.visit(w.consolePath("agents"), http.StatusOK)
	tb.requireHtmx()
	require.Equal(t, 3, tb.count(testID("agent-row")))
	mark := tb.markPage()

	// Picking a status is enough: the list follows, and the address with it
	// (so the filtered list can be bookmarked, and reloading keeps it).
	rows := `[...document.querySelectorAll('[data-testid="agent-row"]')].map(r => r.dataset.id).join(" ")`
	onlyB := rows + ` === ` + jsString(w.b.ID.String())
	tb.do(chromedp.Focus(testID("filter-status")), chromedp.KeyEvent("R")) // "Revoked (any)"
	require.Equal(t, "revoked", value(tb, chromedp.Value(testID("filter-status"))))
	tb.waitUntil(step, onlyB, "only the revoked agent is listed once the filter changed")
	tb.waitUntil(step, `location.search === "?status=revoked"`, "the address carries the filter")
	require.Equal(t, w.consolePath("agents?status=revoked"), tb.path())
	tb.requireSamePage(mark, "the filter changed")

	// The list's own refresh asks for the filtered list, not the one the
	// page was loaded with.
	swapped := tb.refreshed("agents-list")
	tb.waitUntil(refreshWait, swapped, "the filtered list refreshes")
	require.True(t, value(tb, chromedp.Evaluate[bool](onlyB)), "a refresh keeps the filter")
	tb.requireSamePage(mark, "the filtered list refreshed")

	// Back leaves the filter. htmx keeps no copy of tenant pages in the
	// browser's storage, so it loads the unfiltered list from the server.
	tb.do(chromedp.Evaluate[chromedp.Void](`history.back()`))
	tb.waitUntil(step, `location.search === "" && document.querySelectorAll('[data-testid="agent-row"]').length === 3`,
		"back shows every agent again")
	require.Equal(t, "", value(tb, chromedp.Value(testID("filter-status"))), "and the filter reads Any")
	require.Empty(t, value(tb, chromedp.Evaluate[string](`window.chitE2EMark || ""`)), "back loaded the page anew")
	require.True(t, value(tb, chromedp.Evaluate[bool](`sessionStorage.getItem("htmx-history-cache") === null`)),
		"no copy of the page is kept in the browser's storage")

	// The Filter button (the form's submit, for pages without JavaScript)
	// is taken over too. The status is set without a change event, so it
	// is the button's request that brings the filtered list, not the
	// select's or a refresh.
	tb.requireHtmx()
	mark = tb.markPage()
	tb.do(chromedp.SetValue(testID("filter-status"), "revoked"))
	tb.do(chromedp.Click(`[data-testid="filters"] button[type="submit"]`))
	tb.waitUntil(step, onlyB, "the Filter button filters the list")
	tb.waitUntil(step, `location.search === "?status=revoked"`, "the address carries the filter")
	tb.requireSamePage(mark, "the Filter button")
	cw.requireClean()
}

func TestVerifyChainSwapsThePanel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.env.SealChain(w.tn.T.ID)
	auditor := w.tn.ConsoleUser(policy.RoleAuditor)
	tb := openTab(t, w.env)
	cw := tb.watchConsole()
	tb.login(auditor, chittest.ConsolePassword)
	tb.follow(testID("nav-audit"), http.StatusOK)
	tb.requireHtmx()
	require.Equal(t, "unverified", tb.attr(testID("chain-status"), "data-state"))
	mark := tb.markPage()
	events := tb.count(testID("audit-event"))
	require.NotZero(t, events)

	tb.do(chromedp.Click(testID("verify-chain")))
	tb.waitUntil(step, `document.querySelector('[data-testid="chain-status"]').dataset.state !== "unverified"`, "the chain panel shows a verdict")
	require.Equal(t, "ok", tb.attr(testID("chain-status"), "data-state"))
	require.Contains(t, tb.text(testID("chain-summary")), "links verified")
	require.Contains(t, tb.text(testID("checkpoint")), "sealed", "the panel shows the checkpoint")
	tb.requireSamePage(mark, "Verify chain now")
	require.Equal(t, w.consolePath("audit"), tb.path(), "the address is the trail's, not the verification's")
	require.Equal(t, 1, tb.count(testID("chain-status")), "one chain panel, not one inside another")
	require.Equal(t, events, tb.count(testID("audit-event")), "the trail beside it stays")
	tb.screenshot("audit-verified")
	cw.requireClean()
}

// TestPagesRunUnderTheCSP visits every page kind with htmx and requires it
// loaded, configured, pointed at elements that exist, and the console
// clean: no CSP violation, no script error.
func TestPagesRunUnderTheCSP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)
	cw := tb.watchConsole()
	tb.login(w.admin, chittest.ConsolePassword)
	for _, sub := range []string{"", "agents", "agents/" + w.a.ID.String(), "tasks", "tasks/" + w.task.String(),
		"denials", "denials/" + w.denial, "revocations", "audit", "policies", "keys"} {
		tb.visit(w.consolePath(sub), http.StatusOK)
		tb.requireHtmx()
		// Every hx-select and hx-target names an element of the page,
		// and a list that refreshes itself selects itself from its
		// own URL's answer (the same page): a wrong id would make htmx
		// swap in nothing and the list vanish.
		bad := value(tb, chromedp.Evaluate[[]string](`[...document.querySelectorAll("[hx-get]")].flatMap(el => {
			const out = [], name = el.dataset.testid || el.id || el.tagName;
			for (const a of ["hx-select", "hx-target"]) {
				const sel = el.getAttribute(a);
				if (sel && !document.querySelector(sel)) out.push(name + " " + a + "=" + sel + " matches nothing");
			}
			if ((el.getAttribute("hx-trigger") || "").startsWith("every ") && document.querySelector(el.getAttribute("hx-select")) !== el)
				out.push(name + " refreshes but does not select itself");
			return out;
		})`))
		require.Empty(t, bad, "on %s", sub)
	}
	cw.requireClean()

	// The watch sees what the CSP refuses: an inline style, as an injected
	// <style> would be.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.head.insertAdjacentHTML("beforeend", "<style>body{}</style>")`))
	require.True(t, func() bool {
		for _, p := range cw.problems() {
			if strings.Contains(p, "style-src") {
				return true
			}
		}
		return false
	}(), "a refused inline style is reported")
}

// TestHtmxPostCarriesTheCSRFToken: the console has no hx-post yet; a POST
// made through htmx from a page (here: sign out) carries the session's CSRF
// token in the X-CSRF-Token header from <body hx-headers>, and the server
// takes it. The same POST without it is refused. The list left open then
// finds the session gone on its next refresh and goes to the sign-in page,
// which returns to the list.
func TestHtmxPostCarriesTheCSRFToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)
	tb.login(w.admin, chittest.ConsolePassword)
	list := w.consolePath("agents")
	tb.visit(list, http.StatusOK)
	tb.requireHtmx()

	status := value(tb, chromedp.Evaluate[int](`fetch("/console/logout", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.Equal(t, http.StatusForbidden, status, "a POST without the token is refused")
	require.Equal(t, list, tb.path())

	signedOut := value(tb, chromedp.Evaluate[string](`new Promise(done => {
		document.body.addEventListener("htmx:afterRequest", e => done(e.detail.xhr.responseURL), {once: true});
		htmx.ajax("POST", "/console/logout", {source: document.body, swap: "none"});
	})`, chromedp.EvalAwaitPromise))
	require.Equal(t, tb.base+"/console/login", signedOut, "signing out through htmx ends on the sign-in page")

	tb.waitUntil(refreshWait, `location.pathname === "/console/login"`, "the open list goes to the sign-in page")
	require.Equal(t, "/console/login?next="+url.QueryEscape(list), tb.path())
}

// A list that refreshes itself must not take the keyboard focus or the
// scroll position from the person reading it.
func TestRefreshKeepsFocusAndScroll(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tb := openTab(t, w.env)
	cw := tb.watchConsole()
	tb.do(chromedp.EmulateViewport(700, 900)) // narrow: the agents table scrolls sideways
	tb.login(w.admin, chittest.ConsolePassword)
	tb.visit(w.consolePath("agents"), http.StatusOK)
	tb.requireHtmx()
	mark := tb.markPage()

	link := string(agentRow(w.a.ID)) + ` a[href*="/agents/"]`
	tb.do(chromedp.Focus(link))
	focused := `document.activeElement && document.activeElement.matches(` + jsString(link) + `)`
	require.True(t, value(tb, chromedp.Evaluate[bool](focused)))
	scroller := `document.querySelector('#agents-list .table-scroll, #agents-list .table-wrap')`
	scrolled := value(tb, chromedp.Evaluate[float64](`(el => { el.scrollLeft = 120; return el.scrollLeft })(`+scroller+`)`))
	require.Positive(t, scrolled, "the table is wider than the narrow window")

	swapped := tb.refreshed("agents-list")
	tb.waitUntil(refreshWait, swapped, "the list refreshes")
	require.True(t, value(tb, chromedp.Evaluate[bool](focused)), "the focused row link keeps the focus")
	require.Equal(t, scrolled, value(tb, chromedp.Evaluate[float64](scroller+`.scrollLeft`)), "the table keeps its scroll")
	tb.requireSamePage(mark, "the list refreshed")
	cw.requireClean()
}
