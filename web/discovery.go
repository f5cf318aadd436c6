package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants/keyring"
)

// metadata serves the tenant's RFC 8414 authorization server metadata.
func (s *Server) metadata(c echo.Context) error {
	t := tenantOf(c)
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=300")
	return c.JSON(http.StatusOK, oauth.Metadata(t.Issuer(s.cfg.BaseURL)))
}

// jwks serves the tenant's published signing keys (RFC 7517). Verifiers
// refetch on an unknown kid, so a short cache lifetime costs little.
func (s *Server) jwks(c echo.Context) error {
	t := tenantOf(c)
	keys, err := s.deps.Keys.Published(c.Request().Context(), t.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=60")
	c.Response().Header().Set(echo.HeaderContentType, "application/jwk-set+json")
	c.Response().WriteHeader(http.StatusOK)
	return jsonEncode(c, keyring.JWKS(keys))
}
