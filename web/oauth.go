package web

import (
	"mime"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/oauth"
)

// parseForm reads an application/x-www-form-urlencoded body (the only
// encoding OAuth endpoints take) into the request's PostForm.
func parseForm(c echo.Context) *oauth.Denial {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationForm {
		return bodyDenial(http.StatusBadRequest, "the body must be application/x-www-form-urlencoded")
	}
	if c.Request().ContentLength > MaxBodyBytes {
		return bodyDenial(http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB")
	}
	if err := c.Request().ParseForm(); err != nil {
		if tooLarge(err) {
			return bodyDenial(http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB")
		}
		return bodyDenial(http.StatusBadRequest, "the body is not valid form encoding")
	}
	return nil
}

// token is the tenant's token endpoint: client_credentials for clients,
// RFC 8693 token exchange for agents.
func (s *Server) token(c echo.Context) error {
	start := time.Now()
	if d := parseForm(c); d != nil {
		return s.writeOAuthDenial(c, d)
	}
	form := c.Request().PostForm
	if d := oauth.CheckTokenForm(form); d != nil {
		return s.writeOAuthDenial(c, d)
	}
	resp, d, err := s.deps.OAuth.Token(c.Request().Context(), tenantOf(c), c.Request())
	if err != nil {
		return err
	}
	if d != nil {
		return s.writeOAuthDenial(c, d)
	}
	grant := "client_credentials"
	if form.Get("grant_type") == oauth.GrantTokenExchange {
		grant = "token_exchange"
		if form.Get("subject_token_type") == oauth.TokenTypeAccessToken {
			grant = "renewal"
		}
	}
	s.metrics.issuance.WithLabelValues(grant).Observe(time.Since(start).Seconds())
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, resp)
}

// introspect is RFC 7662 for resource-server clients.
func (s *Server) introspect(c echo.Context) error {
	if d := parseForm(c); d != nil {
		return s.writeOAuthDenial(c, d)
	}
	resp, d, err := s.deps.OAuth.Introspect(c.Request().Context(), tenantOf(c), c.Request())
	if err != nil {
		return err
	}
	if d != nil {
		return s.writeOAuthDenial(c, d)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return writeJSON(c, http.StatusOK, echo.MIMEApplicationJSON, resp)
}

// revoke is RFC 7009 for the orchestrator owning the token's task.
func (s *Server) revoke(c echo.Context) error {
	if d := parseForm(c); d != nil {
		return s.writeOAuthDenial(c, d)
	}
	d, err := s.deps.OAuth.Revoke(c.Request().Context(), tenantOf(c), c.Request().PostForm)
	if err != nil {
		return err
	}
	if d != nil {
		return s.writeOAuthDenial(c, d)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.NoContent(http.StatusOK)
}
