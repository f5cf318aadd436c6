package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/oauth/inventory"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
	"github.com/chitdev/chit/tenants/policy"
	"github.com/chitdev/chit/tenants/users"
	"github.com/chitdev/chit/ui"
)

// ConsoleDeps are what the web console needs; without them the server has
// no console.
type ConsoleDeps struct {
	// DB is read by the audit trail's pages (chain, checkpoints, export).
	DB        *pgstore.DB
	Users     *users.Service
	Policy    *policy.Service
	Inventory *inventory.Service
	// Admin changes tenants (key rotation) in the name of a console user.
	Admin interface {
		RotateKeyBy(ctx context.Context, slug, actor string) (*tenants.Tenant, keyring.PublicKey, error)
	}
	// AllKeys lists every signing key a tenant ever had, newest first.
	AllKeys func(ctx context.Context, tenantID uuid.UUID) ([]keyring.PublicKey, error)
}

// consoleCSP allows nothing but the console's own files: no inline script
// or style, no framing, forms only to the console itself.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

const (
	consolePrefix = "/console"
	// csrfField is the form field (and, for htmx, the X-CSRF-Token header)
	// that carries the session's CSRF token.
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	// loginCSRFCookie carries the login form's CSRF token before there is a
	// session (double submit: the form must echo the cookie).
	loginCSRFCookie = "chit_login_csrf"
	consoleKey      = "chit.console"
)

// consoleCtx is who is looking at the console, in which tenant, as what.
type consoleCtx struct {
	sess   *users.Session
	tenant *tenants.Tenant
	role   policy.Role
}

// actor names the console user in audit events and revocations.
func (cc *consoleCtx) actor() string { return cc.sess.User.Actor() }

func consoleOf(c echo.Context) *consoleCtx {
	cc, _ := c.Get(consoleKey).(*consoleCtx)
	return cc
}

// shell is the frame every console page is drawn in.
func (s *Server) shell(c echo.Context, title, active string) ui.Shell {
	cc := consoleOf(c)
	sh := ui.Shell{Title: title, Tenant: cc.tenant.Slug.String(), UserEmail: string(cc.sess.User.Email),
		Role: string(cc.role), CSRF: cc.sess.CSRF(), Active: active}
	for _, m := range s.visibleTenants(cc.sess) {
		sh.Tenants = append(sh.Tenants, ui.TenantLink{Slug: m.Slug, Current: m.TenantID == cc.tenant.ID})
	}
	return sh
}

// visibleTenants are the user's memberships where they hold a role: a
// membership without one shows nothing.
func (s *Server) visibleTenants(sess *users.Session) []users.Membership {
	var out []users.Membership
	for _, m := range sess.Memberships {
		if _, ok := s.console.Policy.ConsoleRole(m.TenantID, sess.User.ID.String()); ok {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) consoleRoutes() {
	e := s.echo
	static := http.StripPrefix(ui.StaticPrefix, http.FileServer(http.FS(ui.Static)))
	e.GET(ui.StaticPrefix+"*", func(c echo.Context) error {
		// Files only: no directory listings.
		if name := c.Param("*"); name == "" || strings.HasSuffix(name, "/") {
			return fault.New(fault.NotFound, "No such file.")
		}
		// Every asset URL carries its content hash (ui.AssetPath).
		c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		static.ServeHTTP(c.Response(), c.Request())
		return nil
	})
	g := e.Group(consolePrefix, consoleHeaders, s.sameOrigin)
	g.GET("/login", s.loginPage)
	g.POST("/login", s.login)
	g.POST("/logout", s.logout, s.withSession, s.checkCSRF)
	g.GET("", s.consoleHome, s.withSession)
	g.GET("/", s.consoleHome, s.withSession)

	t := g.Group("/t/:tenant", s.withSession, s.withConsoleTenant, s.checkCSRF)
	s.credentialPages(t)
	s.governancePages(t)
}

// consoleHeaders keep console pages out of caches, frames and other origins'
// scripts.
func consoleHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		setConsoleHeaders(c.Response().Header())
		return next(c)
	}
}

func setConsoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("Cache-Control", "no-store")
}

// sameOrigin refuses a state-changing request that a browser says came from
// another origin, before anything else looks at it (defence in depth beside
// the CSRF token and SameSite cookies).
func (s *Server) sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return next(c)
		}
		origin := r.Header.Get("Origin")
		if origin == "" { // not sent by this client; the CSRF token still decides
			return next(c)
		}
		if origin != s.origin() && origin != requestOrigin(r) {
			return fault.New(fault.Forbidden, "This form was sent from another site.")
		}
		return next(c)
	}
}

func (s *Server) origin() string {
	u, err := url.Parse(s.cfg.BaseURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sessionCookie is the session cookie's name: with the __Host- prefix when
// the console is served over https (the prefix demands a secure origin).
func (s *Server) sessionCookie() string {
	if strings.HasPrefix(s.cfg.BaseURL, "https://") {
		return "__Host-chit_session"
	}
	return "chit_session"
}

// cookie is how every console cookie is set: Secure (browsers treat
// loopback http as secure), HttpOnly, SameSite=Lax, host-only, path /.
// Lax, not Strict: a link to a denial pasted in an alert or a ticket must
// open signed in. Lax still withholds the cookie from every cross-site
// POST, and each POST also needs the session's CSRF token and a same-site
// Origin.
func (s *Server) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	switch {
	case maxAge < 0:
		ck.MaxAge = -1
	case maxAge > 0:
		ck.MaxAge = int(maxAge / time.Second)
	}
	return ck
}

// withSession finds the signed-in user; without one, a page view goes to
// the login page (and comes back after), anything else is refused.
func (s *Server) withSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var sess *users.Session
		ck, err := c.Cookie(s.sessionCookie())
		if err == nil {
			sess, err = s.console.Users.Session(c.Request().Context(), ck.Value)
		}
		if err != nil {
			if k := fault.KindOf(err); k != fault.Unauthenticated && !errors.Is(err, http.ErrNoCookie) {
				return err
			}
			if c.Request().Method == http.MethodGet {
				return s.toLogin(c)
			}
			return fault.New(fault.Unauthenticated, "Your session has ended. Sign in again.")
		}
		c.Set(consoleKey, &consoleCtx{sess: sess})
		return next(c)
	}
}

func (s *Server) toLogin(c echo.Context) error {
	target := consolePrefix + "/login?next=" + url.QueryEscape(c.Request().URL.RequestURI())
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", target)
		return c.NoContent(http.StatusUnauthorized)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// withConsoleTenant resolves /console/t/{tenant} for the signed-in user.
// A tenant they hold no role in answers 404 exactly like one that does not
// exist: the console never reveals another tenant.
func (s *Server) withConsoleTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		cc := consoleOf(c)
		t, err := s.deps.Tenants.BySlug(c.Request().Context(), c.Param("tenant"))
		if err != nil {
			return err
		}
		role, ok := s.console.Policy.ConsoleRole(t.ID, cc.sess.User.ID.String())
		if !ok || !cc.sess.Member(t.ID) {
			return fault.New(fault.NotFound, "No such tenant.")
		}
		cc.tenant, cc.role = t, role
		return next(c)
	}
}

// checkCSRF requires the session's CSRF token on every state-changing
// request, from the form or (htmx) a header.
func (s *Server) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return next(c)
		}
		token := r.Header.Get(csrfHeader)
		if token == "" {
			token = c.FormValue(csrfField)
		}
		if !consoleOf(c).sess.CheckCSRF(token) {
			return fault.New(fault.Forbidden, "The form's security token is missing or out of date. Reload the page and try again.")
		}
		return next(c)
	}
}

// allow lets the request through when the user's role grants p.
func allow(p policy.Permission) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if cc := consoleOf(c); !cc.role.Can(p) {
				return fault.New(fault.Forbidden, "Your role (%s) does not allow this.", cc.role)
			}
			return next(c)
		}
	}
}

func (s *Server) consoleHome(c echo.Context) error {
	if visible := s.visibleTenants(consoleOf(c).sess); len(visible) > 0 {
		return c.Redirect(http.StatusSeeOther, ui.TenantPath(visible[0].Slug, ""))
	}
	return fault.New(fault.Forbidden, "Your account has no role in any tenant yet. Ask an administrator to give you one.")
}

// render draws a component into a buffer first, so a failing render never
// sends half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// consoleError draws an error as a console page: the same status, title and
// caller-safe detail as the API's problem document.
func (s *Server) consoleError(c echo.Context, p *Problem) {
	if p.Status == http.StatusUnauthorized && c.Request().Method == http.MethodGet {
		_ = s.toLogin(c)
		return
	}
	setConsoleHeaders(c.Response().Header())
	props := ui.ErrorProps{Status: p.Status, Title: p.Title, Detail: p.Detail}
	// Inside a tenant the user may see, the error keeps the console around it.
	if cc := consoleOf(c); cc != nil && cc.tenant != nil {
		props.Back = ui.TenantPath(cc.tenant.Slug.String(), "")
		sh := s.shell(c, p.Title, "")
		_ = render(c, p.Status, templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
			return ui.Console(sh).Render(templ.WithChildren(ctx, ui.ErrorPage(props)), w)
		}))
		return
	}
	if cc := consoleOf(c); cc != nil {
		props.Back = consolePrefix + "/"
	}
	_ = render(c, p.Status, ui.ErrorDocument(props))
}

func isConsole(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == consolePrefix || strings.HasPrefix(p, consolePrefix+"/")
}

// userNames maps the console-user actors among actors ("user:{id}") to
// their addresses, for users of the current tenant; other actors are absent.
func (s *Server) userNames(c echo.Context, actors []string) (map[string]string, error) {
	var ids []uuid.UUID
	for _, a := range actors {
		if rest, ok := strings.CutPrefix(a, "user:"); ok {
			if id, err := uuid.Parse(rest); err == nil {
				ids = append(ids, id)
			}
		}
	}
	names := map[string]string{}
	if len(ids) == 0 {
		return names, nil
	}
	emails, err := s.console.Users.EmailsIn(c.Request().Context(), consoleOf(c).tenant.ID, ids)
	if err != nil {
		return nil, err
	}
	for id, e := range emails {
		names[users.ActorOf(id)] = string(e)
	}
	return names, nil
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
