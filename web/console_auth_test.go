package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/chittest"
	"github.com/chitdev/chit/internal/pgtest"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
	"github.com/chitdev/chit/ui"
)

func consoleCookie(t *testing.T, resp *chittest.Page, name string) *http.Cookie {
	t.Helper()
	for _, raw := range resp.Header.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(raw)
		require.NoError(t, err)
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

func TestLoginSetsAHardenedSessionCookieAndLandsInTheTenant(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	email := acme.ConsoleUser(policy.RoleViewer)

	b := env.Browser()
	page := b.Get("/console/t/acme/agents")
	require.Equal(t, http.StatusSeeOther, page.Status, "no session: to the login page")
	require.Equal(t, "/console/login?next="+url.QueryEscape("/console/t/acme/agents"), page.Header.Get("Location"))

	login := b.Get("/console/login")
	require.Equal(t, http.StatusOK, login.Status)
	require.Contains(t, login.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "no-store", login.Header.Get("Cache-Control"))
	require.Equal(t, 1, login.TestID("password").Length())

	resp := b.Post("/console/login", url.Values{"email": {strings.ToUpper(email)}, "password": {chittest.ConsolePassword},
		"next": {"/console/t/acme/agents"}})
	require.Equal(t, http.StatusSeeOther, resp.Status, resp.Body)
	require.Equal(t, "/console/t/acme/agents", resp.Header.Get("Location"))
	ck := consoleCookie(t, resp, "chit_session")
	require.NotNil(t, ck)
	require.True(t, ck.HttpOnly && ck.Secure, "HttpOnly and Secure")
	require.Equal(t, http.SameSiteLaxMode, ck.SameSite, "no cross-site POST carries it; links from alerts still open signed in")
	require.Equal(t, "/", ck.Path)
	require.Empty(t, ck.Domain, "host-only")

	home := b.Get("/console/")
	require.Equal(t, http.StatusSeeOther, home.Status)
	require.Equal(t, "/console/t/acme/", home.Header.Get("Location"))
}

func TestWrongPasswordsAreRefusedAlikeThenLockTheAccount(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	email := acme.ConsoleUser(policy.RoleAdmin)
	b := env.Browser()

	unknown := b.TryLogin("nobody@acme.test", chittest.ConsolePassword)
	require.Equal(t, http.StatusUnauthorized, unknown.Status)
	message := unknown.TestID("login-error").Text()
	require.NotEmpty(t, message)
	for range 5 {
		p := b.TryLogin(email, "not the password at all")
		require.Equal(t, http.StatusUnauthorized, p.Status)
		require.Equal(t, message, p.TestID("login-error").Text(), "a known address fails exactly like an unknown one")
		require.Equal(t, email, p.Doc.Find(`input[name="email"]`).AttrOr("value", ""), "the address is kept")
		require.Empty(t, p.Doc.Find(`input[name="password"]`).AttrOr("value", ""), "the password never is")
	}
	locked := b.TryLogin(email, chittest.ConsolePassword)
	require.Equal(t, http.StatusUnauthorized, locked.Status, "locked after five failures")
	require.Empty(t, b.Cookie("chit_session"))
}

func TestLoginFormNeedsItsCSRFToken(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	email := acme.ConsoleUser(policy.RoleAdmin)

	b := env.Browser()
	b.Get("/console/login")
	for name, csrf := range map[string]string{"missing": "", "forged": strings.Repeat("A", 43)} {
		p := b.Post("/console/login", url.Values{"email": {email}, "password": {chittest.ConsolePassword}, "csrf": {csrf}})
		require.Equal(t, http.StatusForbidden, p.Status, name)
		require.Empty(t, b.Cookie("chit_session"), name)
	}
	// A browser that never loaded the form has no token cookie at all.
	fresh := env.Browser()
	p := fresh.Post("/console/login", url.Values{"email": {email}, "password": {chittest.ConsolePassword}, "csrf": {strings.Repeat("A", 43)}})
	require.Equal(t, http.StatusForbidden, p.Status)
}

func TestAPlantedSessionIdIsNeverPromoted(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	email := acme.ConsoleUser(policy.RoleAdmin)

	// An attacker plants a session id in the victim's browser, then the victim signs in.
	victim := env.Browser()
	u, _ := url.Parse(env.Addr)
	planted := "attacker-chosen-session-id-0123456789abcdef"
	victim.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "chit_session", Value: planted, Path: "/"}})
	victim.Login(email, chittest.ConsolePassword)
	require.NotEqual(t, planted, victim.Cookie("chit_session"), "login mints a new session id")

	attacker := env.Browser()
	attacker.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "chit_session", Value: planted, Path: "/"}})
	p := attacker.Get("/console/")
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.True(t, strings.HasPrefix(p.Header.Get("Location"), "/console/login"), "the planted id opens nothing")
}

func TestLogoutNeedsTheCSRFTokenAndEndsTheSession(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	email := acme.ConsoleUser(policy.RoleViewer)
	b := env.Browser()
	b.Login(email, chittest.ConsolePassword)

	p := b.Post("/console/logout", url.Values{"csrf": {""}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Equal(t, http.StatusSeeOther, b.Get("/console/").Status)
	require.Equal(t, "/console/t/acme/", b.Get("/console/").Header.Get("Location"), "still signed in")

	// Another site's form, even carrying a token, is refused by origin.
	req, err := http.NewRequest(http.MethodPost, env.Addr+"/console/logout", strings.NewReader(url.Values{"csrf": {b.CSRF}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := b.Client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	p = b.Post("/console/logout", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console/login", p.Header.Get("Location"))
	after := b.Get("/console/")
	require.True(t, strings.HasPrefix(after.Header.Get("Location"), "/console/login"), "signed out")
}

func TestAnotherTenantIsNotFoundForAConsoleUser(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	env.NewTenant("bravo", nil, nil)
	email := acme.ConsoleUser(policy.RoleAdmin)
	b := env.Browser()
	b.Login(email, chittest.ConsolePassword)

	for _, path := range []string{"/console/t/bravo/", "/console/t/bravo/agents", "/console/t/nonexistent/"} {
		p := b.Get(path)
		require.Equal(t, http.StatusNotFound, p.Status, path)
		require.Equal(t, "text/html; charset=UTF-8", p.Header.Get("Content-Type"), path)
	}
}

func TestLoginRedirectStaysInsideTheConsole(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	email := acme.ConsoleUser(policy.RoleViewer)
	for _, next := range []string{"//evil.example/console/", "https://evil.example/", "/\\evil.example", "/console\\@evil"} {
		b := env.Browser()
		b.Get("/console/login")
		p := b.Post("/console/login", url.Values{"email": {email}, "password": {chittest.ConsolePassword}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, p.Status)
		require.Equal(t, "/console/", p.Header.Get("Location"), next)
	}
}

func TestTheSwitcherListsTheTenantsWhereTheUserHoldsARole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := chittest.Start(t)
	acme := env.NewTenant("acme", nil, nil)
	bravo := env.NewTenant("bravo", nil, nil)
	env.NewTenant("charlie", nil, nil)
	email := acme.ConsoleUser(policy.RoleAdmin)
	u, created, err := env.Users.Create(ctx, users.CreateParams{TenantID: bravo.T.ID, Email: users.Email(email),
		Role: policy.RoleViewer, Actor: "test"})
	require.NoError(t, err)
	require.False(t, created)

	b := env.Browser()
	b.Login(email, chittest.ConsolePassword)
	page := b.Get("/console/t/acme/")
	require.Equal(t, "acme", page.TestID("tenant-current").AttrOr("data-tenant", ""))
	links := page.TestID("tenant-link")
	require.Equal(t, 1, links.Length(), "bravo only: charlie is not theirs")
	require.Equal(t, "bravo", links.AttrOr("data-tenant", ""))

	other := b.Get(links.AttrOr("href", ""))
	require.Equal(t, http.StatusOK, other.Status)
	require.Equal(t, "bravo", other.TestID("tenant-current").AttrOr("data-tenant", ""))
	require.Equal(t, "viewer", strings.TrimSpace(strings.ToLower(other.TestID("role").Text())), "the role is per tenant")

	// A membership without a role shows nothing: the tenant leaves the switcher and answers 404.
	require.NoError(t, env.Policy.RevokeRole(ctx, bravo.T.ID, u.ID.String(), policy.RoleViewer, "test"))
	require.Zero(t, b.Get("/console/t/acme/").TestID("tenant-link").Length())
	require.Equal(t, http.StatusNotFound, b.Get("/console/t/bravo/").Status)
}

func TestConsoleAssetsAreFilesWithLongCacheLives(t *testing.T) {
	t.Parallel()
	env := chittest.Start(t)
	b := env.Browser()
	css := b.Get(ui.AssetPath("console.css"))
	require.Equal(t, http.StatusOK, css.Status)
	require.Contains(t, css.Header.Get("Content-Type"), "text/css")
	require.Contains(t, css.Header.Get("Cache-Control"), "immutable")
	require.Equal(t, "nosniff", css.Header.Get("X-Content-Type-Options"))
	js := b.Get(ui.AssetPath("htmx.min.js"))
	require.Equal(t, http.StatusOK, js.Status)
	require.Contains(t, js.Header.Get("Content-Type"), "javascript")
	for _, path := range []string{"/console/static/", "/console/static/README.md", "/console/static/../assets.go"} {
		require.Equal(t, http.StatusNotFound, b.Get(path).Status, path)
	}
}

func TestLoginWarnsWhenPlainHTTPWouldLoseTheCookie(t *testing.T) {
	t.Parallel()
	local := chittest.Start(t)
	require.Zero(t, local.Browser().Get("/console/login").TestID("login-notice").Length(), "loopback http is a secure context")

	db, _ := pgtest.Open(t)
	public := chittest.StartWith(t, db, chittest.Options{BaseURL: "http://chit.example.com"})
	notice := public.Browser().Get("/console/login").TestID("login-notice")
	require.Equal(t, 1, notice.Length())
	require.Contains(t, notice.Text(), "https")

	secure := chittest.StartWith(t, db, chittest.Options{BaseURL: "https://chit.example.com"})
	require.Zero(t, secure.Browser().Get("/console/login").TestID("login-notice").Length())
}
