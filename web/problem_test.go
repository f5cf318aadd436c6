package web

import (
	"errors"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/chitdev/chit/internal/fault"
)

func TestProblemForNeverLeaksInternals(t *testing.T) {
	t.Parallel()
	secret := "pq: password authentication failed for user chit at 10.0.0.7"
	for _, err := range []error{
		errors.New(secret),
		fault.Wrap(errors.New(secret), fault.Internal, "%s", secret),
		echo.NewHTTPError(http.StatusInternalServerError, secret),
	} {
		p := problemFor(err)
		require.Equal(t, http.StatusInternalServerError, p.Status)
		require.Equal(t, "Internal error.", p.Detail)
		require.NotContains(t, p.Title+p.Detail+p.Type, "password")
	}
}

func TestProblemForMapsKinds(t *testing.T) {
	t.Parallel()
	cases := map[fault.Kind]int{
		fault.Invalid: 400, fault.Unauthenticated: 401, fault.Forbidden: 403,
		fault.NotFound: 404, fault.Conflict: 409, fault.Unavailable: 503,
	}
	for kind, status := range cases {
		p := problemFor(fault.Wrap(errors.New("cause stays private"), kind, "what the caller may know"))
		require.Equal(t, status, p.Status, kind.String())
		require.Equal(t, "what the caller may know", p.Detail)
	}
	p := problemFor(fault.InvalidField("trust_domain", "is not valid"))
	require.Equal(t, "trust_domain: is not valid", p.Detail)
	require.Equal(t, "urn:chit:problem:bad-request", p.Type)
}
