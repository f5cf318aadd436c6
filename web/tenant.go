package web

import (
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/tenants"
)

const tenantKey = "chit.tenant"

// withTenant resolves /t/{tenant} and answers 404 for an unknown one.
func (s *Server) withTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		t, err := s.deps.Tenants.BySlug(c.Request().Context(), c.Param("tenant"))
		if err != nil {
			return err
		}
		c.Set(tenantKey, t)
		return next(c)
	}
}

// tenantOf is the tenant withTenant resolved for this request.
func tenantOf(c echo.Context) *tenants.Tenant {
	return c.Get(tenantKey).(*tenants.Tenant)
}
