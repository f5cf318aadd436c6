package web

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/ui"
)

// loginPage shows the sign-in form, with a fresh pre-session CSRF token
// when the browser has none.
func (s *Server) loginPage(c echo.Context) error {
	if ck, err := c.Cookie(s.sessionCookie()); err == nil {
		if _, err := s.console.Users.Session(c.Request().Context(), ck.Value); err == nil {
			return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
		}
	}
	return s.renderLogin(c, http.StatusOK, "", "")
}

func (s *Server) renderLogin(c echo.Context, status int, email, message string) error {
	token := ""
	if ck, err := c.Cookie(loginCSRFCookie); err == nil && len(ck.Value) == 43 {
		token = ck.Value
	} else {
		token = randomToken()
		c.SetCookie(s.cookie(loginCSRFCookie, token, 0))
	}
	next := c.QueryParam("next")
	if c.Request().Method == http.MethodPost {
		next = c.FormValue("next")
	}
	return render(c, status, ui.Login(ui.LoginProps{Email: email, Error: message, CSRF: token, Next: safeNext(next),
		Notice: s.transportNotice()}))
}

// transportNotice warns when the console is served over plain http on an
// address browsers do not treat as secure: they would drop its Secure
// session cookie, and every sign-in would seem to fail.
func (s *Server) transportNotice() string {
	u, err := url.Parse(s.cfg.BaseURL)
	if err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return "This console is served over plain http at " + u.Host + ": browsers will not keep its session cookie. " +
		"Serve chit over https and set --base-url to the https address."
}

// login checks the form's CSRF token against the pre-session cookie, then
// the password. A successful login always gets a new session token: any
// session cookie the browser sent before is ignored and replaced (session
// fixation).
func (s *Server) login(c echo.Context) error {
	ck, err := c.Cookie(loginCSRFCookie)
	form := c.FormValue(csrfField)
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		return fault.New(fault.Forbidden, "The sign-in form's security token is missing or out of date. Reload the page and try again.")
	}
	email := strings.TrimSpace(c.FormValue("email"))
	sess, err := s.console.Users.Login(c.Request().Context(), email, c.FormValue("password"))
	if fault.KindOf(err) == fault.Unauthenticated {
		return s.renderLogin(c, http.StatusUnauthorized, email, fault.Message(err))
	}
	if err != nil {
		return err
	}
	c.SetCookie(s.cookie(loginCSRFCookie, "", -1))
	c.SetCookie(s.cookie(s.sessionCookie(), sess.Token(), 0))
	return c.Redirect(http.StatusSeeOther, safeNext(c.FormValue("next")))
}

func (s *Server) logout(c echo.Context) error {
	if err := s.console.Users.Logout(c.Request().Context(), consoleOf(c).sess); err != nil {
		return err
	}
	c.SetCookie(s.cookie(s.sessionCookie(), "", -1))
	return c.Redirect(http.StatusSeeOther, consolePrefix+"/login")
}

// safeNext keeps a post-login redirect inside the console: a path under
// /console/, never another host ("//evil" or "/\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, consolePrefix+"/") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return consolePrefix + "/"
	}
	return next
}
