package verify

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

type claimsKey struct{}

// ClaimsFrom returns the claims Middleware verified for this request.
func ClaimsFrom(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	return c
}

// Middleware admits requests with a valid bearer token holding every scope
// in scopes, and answers 401 (403 for a missing scope) otherwise, with an
// RFC 6750 WWW-Authenticate header. With echo: echo.WrapMiddleware(v.Middleware(...)).
func (v *Verifier) Middleware(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				w.Header().Set("WWW-Authenticate", `Bearer`)
				http.Error(w, "a bearer token is required", http.StatusUnauthorized)
				return
			}
			c, err := v.Verify(strings.TrimSpace(raw), scopes...)
			switch {
			case errors.Is(err, ErrScope):
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
				http.Error(w, "insufficient scope", http.StatusForbidden)
				return
			case err != nil:
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, "invalid token", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
		})
	}
}
