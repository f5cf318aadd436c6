package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/stretchr/testify/require"
)

// hostile is what an agent, orchestrator or principal could put in a name,
// a scope or a reason: it must come out as text everywhere.
const hostile = `<script>alert(1)</script>"'&`

func renderHTML(t *testing.T, c templ.Component) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, c.Render(context.Background(), &buf))
	return buf.String()
}

func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(renderHTML(t, c)))
	require.NoError(t, err)
	return doc
}

// withChildren renders c with children, as a page's `@c { … }` would.
func withChildren(c, children templ.Component) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		return c.Render(templ.WithChildren(ctx, children), w)
	})
}

func byTestID(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

func sampleShell() Shell {
	return Shell{
		Title:     "Agents",
		Tenant:    "acme",
		Tenants:   []TenantLink{{Slug: "acme", Current: true}, {Slug: "globex"}, {Slug: "initech"}},
		UserEmail: "maria@acme.example",
		Role:      RoleAdmin,
		CSRF:      "csrf-token-1",
		Active:    NavAgents,
	}
}

func TestConsoleTenantSwitcherMarksCurrentAndLinksOthers(t *testing.T) {
	t.Parallel()
	doc := render(t, Console(sampleShell()))

	switcher := byTestID(doc, "tenant-switcher")
	require.Equal(t, 1, switcher.Length())

	current := switcher.Find(`[data-testid="tenant-current"]`)
	require.Equal(t, 1, current.Length())
	require.Contains(t, current.Text(), "acme")
	require.Contains(t, current.Text(), "Current", "the current tenant is marked in words, not only by colour")
	require.Equal(t, "true", current.AttrOr("aria-current", ""))

	var links []string
	switcher.Find(`[data-testid="tenant-link"]`).Each(func(_ int, s *goquery.Selection) {
		links = append(links, s.AttrOr("href", ""))
	})
	require.Equal(t, []string{"/console/t/globex/", "/console/t/initech/"}, links,
		"every other tenant is a plain link to its overview; the current one is not offered as a switch")
}

func TestConsoleTenantSwitcherWithOneTenant(t *testing.T) {
	t.Parallel()
	s := sampleShell()
	s.Tenants = []TenantLink{{Slug: "acme", Current: true}}
	doc := render(t, Console(s))

	require.Equal(t, 0, byTestID(doc, "tenant-link").Length())
	require.Contains(t, byTestID(doc, "tenant-current").Text(), "acme")
}

func TestConsoleTenantSlugIsPathEscaped(t *testing.T) {
	t.Parallel()
	s := sampleShell()
	s.Tenants = append(s.Tenants, TenantLink{Slug: "../admin?x=1"})
	doc := render(t, Console(s))

	href, _ := doc.Find(`[data-testid="tenant-link"][data-tenant="../admin?x=1"]`).Attr("href")
	require.Equal(t, "/console/t/..%2Fadmin%3Fx=1/", href)
}

func TestConsoleNavigation(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		NavOverview:    "/console/t/acme/",
		NavAgents:      "/console/t/acme/agents",
		NavTasks:       "/console/t/acme/tasks",
		NavDenials:     "/console/t/acme/denials",
		NavRevocations: "/console/t/acme/revocations",
		NavAudit:       "/console/t/acme/audit",
		NavPolicies:    "/console/t/acme/policies",
		NavKeys:        "/console/t/acme/keys",
	}
	for _, role := range []string{RoleAdmin, RoleAuditor, RoleViewer} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			s := sampleShell()
			s.Role = role
			doc := render(t, Console(s))

			for key, href := range want {
				link := byTestID(doc, "nav-"+key)
				if key == NavAudit && role == RoleViewer {
					require.Equal(t, 0, link.Length(), "viewers are not shown the audit trail")
					continue
				}
				require.Equal(t, 1, link.Length(), key)
				require.Equal(t, href, link.AttrOr("href", ""), key)
			}
			active := byTestID(doc, "nav").Find(`[aria-current="page"]`)
			require.Equal(t, 1, active.Length())
			require.Equal(t, "nav-agents", active.AttrOr("data-testid", ""))
		})
	}
}

func TestConsoleUserMenuAndLogout(t *testing.T) {
	t.Parallel()
	doc := render(t, Console(sampleShell()))

	require.Equal(t, "maria@acme.example", byTestID(doc, "user-email").Text())
	require.Equal(t, "admin", byTestID(doc, "role").Text())

	form := byTestID(doc, "logout-form")
	require.Equal(t, "post", form.AttrOr("method", ""))
	require.Equal(t, "/console/logout", form.AttrOr("action", ""))
	require.Equal(t, "csrf-token-1", form.Find(`input[type="hidden"][name="csrf"]`).AttrOr("value", ""))
	require.Equal(t, 1, form.Find(`button[type="submit"]`).Length())
}

func TestConsoleHeadLoadsOnlyVersionedOwnAssets(t *testing.T) {
	t.Parallel()
	doc := render(t, Console(sampleShell()))

	require.Equal(t, AssetPath("console.css"), doc.Find(`link[rel="stylesheet"]`).AttrOr("href", ""))
	require.Equal(t, AssetPath("htmx.min.js"), doc.Find(`script`).AttrOr("src", ""))
	require.True(t, strings.HasPrefix(AssetPath("htmx.min.js"), "/console/static/htmx.min.js?v="))

	var cfg map[string]any
	require.NoError(t, json.Unmarshal([]byte(doc.Find(`meta[name="htmx-config"]`).AttrOr("content", "")), &cfg))
	require.Equal(t, false, cfg["includeIndicatorStyles"], "htmx would inject a <style> the CSP refuses")
	require.Equal(t, false, cfg["allowEval"])
	require.Equal(t, float64(0), cfg["historyCacheSize"], "no tenant data kept in localStorage")

	var headers map[string]string
	require.NoError(t, json.Unmarshal([]byte(doc.Find("body").AttrOr("hx-headers", "")), &headers))
	require.Equal(t, "csrf-token-1", headers[CSRFHeader])
}

func TestConsoleShowsFlashAndContent(t *testing.T) {
	t.Parallel()
	s := sampleShell()
	s.Flash = &Flash{Kind: "error", Text: "Revocation failed."}
	doc := render(t, withChildren(Console(s), EmptyState("No agents", "")))

	flash := byTestID(doc, "flash")
	require.Equal(t, "error", flash.AttrOr("data-kind", ""))
	require.Equal(t, "alert", flash.AttrOr("role", ""))
	require.Contains(t, flash.Text(), "Revocation failed.")
	require.Equal(t, 1, byTestID(doc, "content").Find(`[data-testid="empty"]`).Length())
}

func TestStatusBadgeAlwaysShowsATextLabel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind, label   string
		text, colour  string
		colourMessage string
	}{
		{"live", "Live", "Live", "badge-green", ""},
		{"revoked", "Revoked", "Revoked", "badge-red", ""},
		{"denied", "", "denied", "badge-red", "without a label the kind is the text"},
		{"expired", "Expired", "Expired", "badge-amber", ""},
		{"silent", "Silent", "Silent", "badge-grey", ""},
		{"completed", "Completed", "Completed", "badge-blue", ""},
		{"something-new", "Quarantined", "Quarantined", "badge-grey", "an unknown kind is neutral, never green"},
		{"", "", "unknown", "badge-grey", ""},
		{"live", "   ", "live", "badge-green", "a blank label is no label"},
	}
	for _, c := range cases {
		doc := render(t, StatusBadge(c.kind, c.label))
		badge := byTestID(doc, "status")
		require.Equal(t, c.text, strings.TrimSpace(badge.Text()), "%q/%q", c.kind, c.label)
		require.True(t, badge.HasClass(c.colour), "%q: %s has class %q", c.kind, c.colourMessage, badge.AttrOr("class", ""))
	}
}

func TestIDShowsShortFormWithFullValueInTitle(t *testing.T) {
	t.Parallel()
	const id = "0193a5f2-7c1e-7d3a-9b2f-3c4d5e6f7a8b"

	linked := byTestID(render(t, ID(id, "/console/t/acme/agents/"+id)), "id")
	require.Equal(t, "a", goquery.NodeName(linked))
	require.Equal(t, "0193…5e6f7a8b", linked.Text())
	require.Equal(t, id, linked.AttrOr("title", ""))
	require.Equal(t, "/console/t/acme/agents/"+id, linked.AttrOr("href", ""))

	plain := byTestID(render(t, ID("short-id", "")), "id")
	require.Equal(t, "span", goquery.NodeName(plain))
	require.Equal(t, "short-id", plain.Text())

	unsafe := byTestID(render(t, ID(id, "javascript:alert(1)")), "id")
	require.NotContains(t, unsafe.AttrOr("href", ""), "javascript")
}

func TestShortIDKeepsDistinguishingTail(t *testing.T) {
	t.Parallel()
	// Two UUIDv7 from the same minute share their leading digits.
	a, b := ShortID("0193a5f2-7c1e-7d3a-9b2f-3c4d5e6f7a8b"), ShortID("0193a5f2-7c1e-7d3a-9b2f-aaaaaaaaaaaa")
	require.NotEqual(t, a, b)
	require.Equal(t, "sixteen-chars-ok", ShortID("sixteen-chars-ok"))
	require.Equal(t, "éééé…éééééééé", ShortID(strings.Repeat("é", 20)), "counts characters, not bytes")
}

func TestTimeRendersUTCWithMachineReadableValue(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CET", 3600)
	at := time.Date(2025, 11, 23, 7, 37, 12, 0, berlin)

	el := byTestID(render(t, Time(at)), "time")
	require.Equal(t, "time", goquery.NodeName(el))
	require.Equal(t, "2025-11-23T06:37:12Z", el.AttrOr("datetime", ""))
	require.Equal(t, "2025-11-23 06:37:12 UTC", el.Text())

	require.Equal(t, "—", byTestID(render(t, Time(time.Time{})), "time").Text())
}

func TestAge(t *testing.T) {
	t.Parallel()
	cases := map[time.Duration]string{
		0:                                    "0s",
		4*time.Second + 900*time.Millisecond: "4s",
		3*time.Minute + 12*time.Second:       "3m 12s",
		3 * time.Minute:                      "3m",
		2*time.Hour + 5*time.Minute + 59*time.Second: "2h 5m",
		2 * time.Hour:                 "2h",
		26*time.Hour + 30*time.Minute: "1d 2h",
		-5 * time.Second:              "-5s",
	}
	for d, want := range cases {
		require.Equal(t, want, FormatAge(d), d.String())
	}
	require.Equal(t, "3m 12s", byTestID(render(t, Age(192*time.Second)), "age").Text())
}

func TestScopeList(t *testing.T) {
	t.Parallel()
	doc := render(t, ScopeList([]string{"repo:read", "issues:write"}))
	var chips []string
	byTestID(doc, "scope").Each(func(_ int, s *goquery.Selection) { chips = append(chips, s.Text()) })
	require.Equal(t, []string{"repo:read", "issues:write"}, chips)

	require.Equal(t, "none", byTestID(render(t, ScopeList(nil)), "scopes").Text())
}

func TestKV(t *testing.T) {
	t.Parallel()
	doc := render(t, KV([]KVRow{
		{Label: "Task", Value: "0193a5f1", Mono: true, TestID: "task-id"},
		{Label: "Status", Content: StatusBadge("live", "Running")},
		{Label: "Purpose"},
	}))
	var labels []string
	doc.Find("dt").Each(func(_ int, s *goquery.Selection) { labels = append(labels, s.Text()) })
	require.Equal(t, []string{"Task", "Status", "Purpose"}, labels)
	require.Equal(t, "0193a5f1", byTestID(doc, "task-id").Text())
	require.True(t, byTestID(doc, "task-id").HasClass("mono"))
	require.Equal(t, "Running", byTestID(doc, "status").Text())
	require.Equal(t, "—", strings.TrimSpace(doc.Find("dd").Eq(2).Text()))
}

func TestPager(t *testing.T) {
	t.Parallel()
	require.Empty(t, strings.TrimSpace(renderHTML(t, Pager(""))), "the last page has no pager")

	next := render(t, Pager("/console/t/acme/agents?cursor=abc"))
	require.Equal(t, "/console/t/acme/agents?cursor=abc", byTestID(next, "next-page").AttrOr("href", ""))
	require.Equal(t, 0, byTestID(next, "first-page").Length())

	both := render(t, PagerWithFirst("/console/t/acme/agents", "/console/t/acme/agents?cursor=def"))
	require.Equal(t, "/console/t/acme/agents", byTestID(both, "first-page").AttrOr("href", ""))
	require.Equal(t, "/console/t/acme/agents?cursor=def", byTestID(both, "next-page").AttrOr("href", ""))

	lastWithFirst := render(t, PagerWithFirst("/console/t/acme/agents", ""))
	require.Equal(t, 1, byTestID(lastWithFirst, "first-page").Length())
	require.Equal(t, 0, byTestID(lastWithFirst, "next-page").Length())
}

func TestConfirmPanelPostsTheActionWithItsFields(t *testing.T) {
	t.Parallel()
	doc := render(t, ConfirmPanel(ConfirmProps{
		Title:  "Revoke agent?",
		Body:   "Its tokens stop working.",
		Action: "/console/t/acme/revocations",
		CSRF:   "tok",
		Fields: []Hidden{{Name: "level", Value: "agent"}, {Name: "target", Value: "0193"}},
		Cancel: "/console/t/acme/agents/0193",
	}))
	form := byTestID(doc, "confirm").Find("form")
	require.Equal(t, "post", form.AttrOr("method", ""))
	require.Equal(t, "/console/t/acme/revocations", form.AttrOr("action", ""))

	var fields []string
	form.Find(`input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		fields = append(fields, s.AttrOr("name", "")+"="+s.AttrOr("value", ""))
	})
	require.Equal(t, []string{"csrf=tok", "level=agent", "target=0193"}, fields)
	require.Equal(t, "Confirm", byTestID(doc, "confirm-submit").Text())
	require.Equal(t, "/console/t/acme/agents/0193", byTestID(doc, "confirm-cancel").AttrOr("href", ""))

	noCancel := render(t, ConfirmPanel(ConfirmProps{Title: "x", Action: "/a", Submit: "Revoke chain"}))
	require.Equal(t, 0, byTestID(noCancel, "confirm-cancel").Length())
	require.Equal(t, "Revoke chain", byTestID(noCancel, "confirm-submit").Text())
}

func TestConfirmPanelChildrenAreInsideTheForm(t *testing.T) {
	t.Parallel()
	reason := templ.Raw(`<textarea name="reason"></textarea>`)
	doc := render(t, withChildren(ConfirmPanel(ConfirmProps{Title: "x", Action: "/a"}), reason))
	require.Equal(t, 1, byTestID(doc, "confirm").Find(`form textarea[name="reason"]`).Length())
}

func TestLineageTree(t *testing.T) {
	t.Parallel()
	doc := render(t, LineageTree([]TreeNode{{
		Label: "user:maria", Kind: "principal",
		Children: []TreeNode{{
			Label: "0193…7a8b", Href: "/console/t/acme/agents/0193", Kind: "agent", Status: "live", StatusLabel: "Live",
			Scope: []string{"repo:read"}, TestID: "root-agent",
			Children: []TreeNode{
				{Label: "0193…9cad", Kind: "agent", Status: "revoked", StatusLabel: "Revoked"},
				{Label: "jti …c0ff", Kind: "token", Status: "expired"},
			},
		}},
	}}))
	tree := byTestID(doc, "lineage-tree")
	require.Equal(t, 1, tree.Length())
	require.Equal(t, "ul", goquery.NodeName(tree))

	root := tree.ChildrenFiltered("li")
	require.Equal(t, "principal", root.AttrOr("data-kind", ""))
	agent := root.Find(`[data-testid="root-agent"]`)
	require.Equal(t, "agent", agent.AttrOr("data-kind", ""))
	require.Equal(t, "/console/t/acme/agents/0193", agent.Find(`a[data-testid="lineage-label"]`).First().AttrOr("href", ""))

	children := agent.ChildrenFiltered("ul").ChildrenFiltered("li")
	require.Equal(t, 2, children.Length(), "the agent's children are nested under it")
	require.Equal(t, "lineage-node", children.First().AttrOr("data-testid", ""))
	require.Equal(t, "Revoked", children.First().Find(`[data-testid="status"]`).Text())
	require.Equal(t, "token", children.Last().AttrOr("data-kind", ""))
	require.Equal(t, "expired", children.Last().Find(`[data-testid="status"]`).Text())

	empty := render(t, LineageTree(nil))
	require.Equal(t, 1, byTestID(empty, "lineage-tree").Find(`[data-testid="empty"]`).Length())
}

func TestLoginForm(t *testing.T) {
	t.Parallel()
	doc := render(t, Login(LoginProps{CSRF: "tok", Next: "/console/t/acme/agents"}))

	form := byTestID(doc, "login-form")
	require.Equal(t, "post", form.AttrOr("method", ""))
	require.Equal(t, "/console/login", form.AttrOr("action", ""))
	require.Equal(t, "tok", form.Find(`input[name="csrf"]`).AttrOr("value", ""))
	require.Equal(t, "/console/t/acme/agents", form.Find(`input[name="next"]`).AttrOr("value", ""))

	email := byTestID(doc, "email")
	require.Equal(t, "email", email.AttrOr("name", ""))
	require.Equal(t, "username", email.AttrOr("autocomplete", ""))
	password := byTestID(doc, "password")
	require.Equal(t, "password", password.AttrOr("type", ""))
	require.Equal(t, "password", password.AttrOr("name", ""))
	require.Equal(t, "current-password", password.AttrOr("autocomplete", ""))
	_, hasValue := password.Attr("value")
	require.False(t, hasValue, "a password is never written back into the page")
	require.Equal(t, "submit", byTestID(doc, "login-submit").AttrOr("type", ""))
	require.Equal(t, 0, byTestID(doc, "login-error").Length())

	failed := render(t, Login(LoginProps{Email: "maria@acme.example", Error: "Email or password is wrong.", CSRF: "tok"}))
	require.Contains(t, byTestID(failed, "login-error").Text(), "Email or password is wrong.")
	require.Equal(t, "maria@acme.example", byTestID(failed, "email").AttrOr("value", ""))
	require.Equal(t, 0, doc.Find(`[data-testid="tenant-switcher"]`).Length(), "sign-in is outside the console frame")
}

func TestErrorPage(t *testing.T) {
	t.Parallel()
	doc := render(t, ErrorPage(ErrorProps{Status: 404, Detail: "No such agent.", Back: "/console/t/acme/"}))
	require.Equal(t, "404", byTestID(doc, "error-status").Text())
	require.Equal(t, "Not Found", byTestID(doc, "error-title").Text())
	require.Equal(t, "No such agent.", byTestID(doc, "error-detail").Text())
	require.Equal(t, "/console/t/acme/", byTestID(doc, "error-back").AttrOr("href", ""))

	page := render(t, ErrorDocument(ErrorProps{Status: 403, Title: "Not allowed here"}))
	require.Equal(t, AssetPath("console.css"), page.Find(`link[rel="stylesheet"]`).AttrOr("href", ""))
	require.Equal(t, "Not allowed here", byTestID(page, "error-title").Text())
}

func TestStatCard(t *testing.T) {
	t.Parallel()
	doc := render(t, StatCard(StatProps{Label: "Live agents", Value: "1,204", Href: "/console/t/acme/agents", Kind: "live", TestID: "live-agents"}))
	card := byTestID(doc, "live-agents")
	require.Equal(t, "/console/t/acme/agents", card.AttrOr("href", ""))
	require.Equal(t, "1,204", card.Find(`[data-testid="stat-value"]`).Text())
}

// everyComponent renders each exported component once, with s wherever a
// caller-supplied string can go.
func everyComponent(s string) map[string]templ.Component {
	shell := sampleShell()
	shell.Title, shell.UserEmail, shell.Role, shell.CSRF = s, s, s, s
	shell.Tenant = s
	shell.Tenants = []TenantLink{{Slug: s, Current: true}, {Slug: "other" + s}}
	shell.Flash = &Flash{Kind: "ok", Text: s}
	tree := []TreeNode{{Label: s, Kind: "principal", Meta: s, Children: []TreeNode{
		{Label: s, Href: "/x?" + s, Kind: "agent", Status: s, StatusLabel: s, Scope: []string{s}, Meta: s, TestID: s},
	}}}
	return map[string]templ.Component{
		"Console":        withChildren(Console(shell), templ.NopComponent),
		"Layout":         Layout(LayoutProps{Title: s}),
		"Home":           Home(HomeProps{Version: s}),
		"Login":          Login(LoginProps{Email: s, Error: s, CSRF: s, Next: s}),
		"StatusBadge":    StatusBadge(s, s),
		"EmptyState":     EmptyState(s, s),
		"Pager":          PagerWithFirst("/a?"+s, "/b?"+s),
		"ID":             ID(s, "/x/"+s),
		"Time":           Time(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)),
		"Age":            Age(3 * time.Minute),
		"ScopeList":      ScopeList([]string{s, s}),
		"KV":             KV([]KVRow{{Label: s, Value: s}, {Label: s, Value: s, Mono: true, TestID: s}}),
		"CSRFField":      CSRFField(s),
		"ConfirmPanel":   ConfirmPanel(ConfirmProps{Title: s, Body: s, Action: "/r?" + s, CSRF: s, Fields: []Hidden{{Name: s, Value: s}}, Submit: s, Cancel: "/c?" + s}),
		"FlashOK":        FlashMessage(Flash{Kind: "ok", Text: s}),
		"FlashError":     FlashMessage(Flash{Kind: "error", Text: s}),
		"ErrorPage":      ErrorPage(ErrorProps{Status: 500, Title: s, Detail: s, Back: "/b?" + s}),
		"ErrorDocument":  ErrorDocument(ErrorProps{Status: 404, Title: s, Detail: s}),
		"LineageTree":    LineageTree(tree),
		"PageHeader":     PageHeader(PageHeaderProps{Title: s, Subtitle: s}),
		"StatCard":       StatCard(StatProps{Label: s, Value: s, Hint: s, Href: "/s?" + s, Kind: s, TestID: s}),
		"StatCardNoLink": StatCard(StatProps{Label: s, Value: s}),
	}
}

func TestCallerStringsAreEscapedEverywhere(t *testing.T) {
	t.Parallel()
	for name, c := range everyComponent(hostile) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			html := renderHTML(t, c)
			require.NotContains(t, html, "<script>alert", "markup from data reached the page")
			require.NotContains(t, html, `"'&`, "quotes or ampersand unescaped")

			// The string survives as text: escaped, not dropped.
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
			require.NoError(t, err)
			found := strings.Contains(doc.Text(), hostile)
			doc.Find("*").Each(func(_ int, s *goquery.Selection) {
				for _, a := range s.Nodes[0].Attr {
					found = found || strings.Contains(a.Val, hostile)
				}
			})
			if name != "Time" && name != "Age" {
				require.True(t, found, "the caller's string is shown, as text")
			}
		})
	}
}

func TestTreeFlashKVAndConfirmShowHostileStringsAsText(t *testing.T) {
	t.Parallel()
	tree := render(t, LineageTree([]TreeNode{{Label: hostile, Kind: "agent", Scope: []string{hostile}, Meta: hostile}}))
	require.Equal(t, hostile, byTestID(tree, "lineage-label").Text())
	require.Equal(t, hostile, byTestID(tree, "scope").Text())

	flash := render(t, FlashMessage(Flash{Kind: "error", Text: hostile}))
	require.Contains(t, byTestID(flash, "flash").Text(), hostile)

	kv := render(t, KV([]KVRow{{Label: "Reason", Value: hostile, TestID: "reason"}}))
	require.Equal(t, hostile, byTestID(kv, "reason").Text())

	confirm := render(t, ConfirmPanel(ConfirmProps{Title: "t", Body: hostile, Action: "/a"}))
	require.Equal(t, hostile, byTestID(confirm, "confirm-body").Text())

	for _, doc := range []*goquery.Document{tree, flash, kv, confirm} {
		require.Equal(t, 0, doc.Find("script").Length())
	}
}

// The console's Content-Security-Policy refuses inline styles and scripts:
// any that a component rendered would silently not work, or be an injection.
func TestNoInlineStyleOrScript(t *testing.T) {
	t.Parallel()
	for name, c := range everyComponent(hostile) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := render(t, c)
			require.Equal(t, 0, doc.Find("[style]").Length(), "style attribute")
			require.Equal(t, 0, doc.Find("style").Length(), "<style> block")
			doc.Find("script").Each(func(_ int, s *goquery.Selection) {
				src, ok := s.Attr("src")
				require.True(t, ok, "inline <script>")
				require.True(t, strings.HasPrefix(src, StaticPrefix), "script from elsewhere: %s", src)
				require.Empty(t, strings.TrimSpace(s.Text()), "<script src> with a body")
			})
			doc.Find("*").Each(func(_ int, s *goquery.Selection) {
				for _, a := range s.Nodes[0].Attr {
					require.False(t, strings.HasPrefix(strings.ToLower(a.Key), "on"), "inline event handler %s", a.Key)
					require.NotContains(t, strings.ToLower(a.Val), "javascript:", "script URL in %s", a.Key)
				}
			})
		})
	}
}

func TestAssetPathChangesWithContent(t *testing.T) {
	t.Parallel()
	v1 := newAssetIndex(fstest.MapFS{"console.css": {Data: []byte("body{color:red}")}})
	v1Again := newAssetIndex(fstest.MapFS{"console.css": {Data: []byte("body{color:red}")}})
	v2 := newAssetIndex(fstest.MapFS{"console.css": {Data: []byte("body{color:blue}")}})

	require.True(t, strings.HasPrefix(v1.path("console.css"), "/console/static/console.css?v="))
	require.Equal(t, v1.path("console.css"), v1Again.path("console.css"), "same content, same URL: caches stay warm")
	require.NotEqual(t, v1.path("console.css"), v2.path("console.css"), "changed content, new URL: no stale copy")
	require.Equal(t, "/console/static/missing.css", v1.path("missing.css"))
}

func TestStaticServesTheLinkedFilesOnly(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"console.css", "htmx.min.js", "favicon.svg"} {
		content, err := fs.ReadFile(Static, name)
		require.NoError(t, err, name)
		require.NotEmpty(t, content)
		require.Contains(t, AssetPath(name), "?v=", name)
	}
	_, err := fs.Stat(Static, "README.md")
	require.ErrorIs(t, err, fs.ErrNotExist, "the vendoring notes are not served")
}

func TestStylesheetDefinesTheClassesComponentsUse(t *testing.T) {
	t.Parallel()
	css, err := fs.ReadFile(Static, "console.css")
	require.NoError(t, err)
	// Classes whose absence a user would see: status colours, the indicator
	// htmx no longer styles itself, the tree's connectors, sticky headers.
	for _, rule := range []string{
		".badge-green", ".badge-red", ".badge-amber", ".badge-blue", ".badge-grey",
		".htmx-indicator", ".htmx-request .htmx-indicator",
		".tree-children > li::before", ".table th", "position: sticky",
		"prefers-color-scheme: dark", ":focus-visible",
	} {
		require.Contains(t, string(css), rule)
	}
}
