// Package verifyecho is the verify middleware for echo servers; it lives
// apart so that package verify itself needs nothing but the standard library.
package verifyecho

import (
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/verify"
)

// Middleware admits requests with a valid bearer token holding every scope
// in scopes; handlers read the claims with verify.ClaimsFrom(c.Request().Context()).
func Middleware(v *verify.Verifier, scopes ...string) echo.MiddlewareFunc {
	return echo.WrapMiddleware(v.Middleware(scopes...))
}
