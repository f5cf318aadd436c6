package oauth

import (
	"fmt"

	"github.com/google/uuid"
)

// Check names the check a refused request failed (SPEC §4.4).
type Check string

// Checks.
const (
	CheckSignature  Check = "signature"
	CheckExpired    Check = "expired"
	CheckReplay     Check = "replay"
	CheckRevoked    Check = "revoked"
	CheckScope      Check = "scope"
	CheckAudience   Check = "audience"
	CheckPolicy     Check = "policy"
	CheckDepth      Check = "depth"
	CheckRenewalCap Check = "renewal_cap"
	CheckDeadline   Check = "deadline"
	CheckTenant     Check = "tenant"
	CheckFormat     Check = "format"
)

// OAuth error codes (RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 8707).
const (
	ErrInvalidRequest       = "invalid_request"
	ErrInvalidClient        = "invalid_client"
	ErrInvalidGrant         = "invalid_grant"
	ErrInvalidScope         = "invalid_scope"
	ErrInvalidTarget        = "invalid_target"
	ErrUnauthorizedClient   = "unauthorized_client"
	ErrUnsupportedGrantType = "unsupported_grant_type"
)

// Denial is a refused request: which check failed and why, in words safe to
// show the caller (never a token or key). It becomes an error response and,
// once recorded, a why-denied trace with an ID.
type Denial struct {
	ID           uuid.UUID // set when recorded
	Check        Check
	Reason       string
	Expected     string
	Presented    string
	Rule         string
	RevocationID uuid.UUID
	ClientID     string
	AgentID      uuid.UUID
	TaskID       uuid.UUID

	// OAuthError is the RFC 6749 error code on OAuth endpoints.
	OAuthError string
	// Status is the HTTP status: RFC 6749 on OAuth endpoints, SPEC §4.4 on the API.
	Status int
}

func (d *Denial) Error() string { return fmt.Sprintf("%s: %s", d.Check, d.Reason) }

// deny builds a denial for the token endpoint, where failures of the
// presented credentials are 400 invalid_request (RFC 8693 §2.2.2).
func deny(check Check, reason string) *Denial {
	d := &Denial{Check: check, Reason: reason, OAuthError: ErrInvalidRequest, Status: 400}
	switch check {
	case CheckScope:
		d.OAuthError = ErrInvalidScope
	case CheckAudience:
		d.OAuthError = ErrInvalidTarget
	}
	return d
}

// clientDenial is a failed client authentication: 401 invalid_client.
func clientDenial(check Check, reason string) *Denial {
	return &Denial{Check: check, Reason: reason, OAuthError: ErrInvalidClient, Status: 401}
}

// apiDenial is a refusal on the control-plane API with its HTTP status.
func apiDenial(status int, check Check, reason string) *Denial {
	return &Denial{Check: check, Reason: reason, Status: status, OAuthError: ErrInvalidRequest}
}

// with sets the expected and presented values of the trace.
func (d *Denial) with(expected, presented string) *Denial {
	d.Expected, d.Presented = expected, presented
	return d
}
