package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants"
)

// denialBudget bounds how many denials per second a tenant's trail records,
// so a flood of bad requests grows neither the database nor the audit chain
// without limit. Refusals over budget are still answered, and counted.
type denialBudget struct {
	mu       sync.Mutex
	cfg      DenialBudget
	limiters map[uuid.UUID]*rate.Limiter
}

// DenialBudget is how many refusals per second, with a burst, each tenant's
// trail records; the zero value means 200/s with bursts of 400.
type DenialBudget struct {
	PerSecond float64
	Burst     int
}

func (b *denialBudget) allow(tenantID uuid.UUID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.limiters[tenantID]
	if l == nil {
		if b.limiters == nil {
			b.limiters = map[uuid.UUID]*rate.Limiter{}
		}
		perSecond, burst := b.cfg.PerSecond, b.cfg.Burst
		if perSecond <= 0 || burst <= 0 {
			perSecond, burst = 200, 400
		}
		l = rate.NewLimiter(rate.Limit(perSecond), burst)
		b.limiters[tenantID] = l
	}
	return l.Allow()
}

// oauthError is RFC 6749 §5.2 JSON extended with RFC 9457 members.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
	Type             string `json:"type"`
	Title            string `json:"title"`
	Status           int    `json:"status"`
	Detail           string `json:"detail,omitempty"`
	DenialID         string `json:"denial_id,omitempty"`
}

// record stores d's trace (within the tenant's budget) and counts it.
func (s *Server) record(c echo.Context, t *tenants.Tenant, d *oauth.Denial) {
	s.metrics.denials.WithLabelValues(string(d.Check)).Inc()
	if d.Check == oauth.CheckScope {
		s.metrics.scopeRejections.Inc()
	}
	if !s.budget.allow(t.ID) {
		s.metrics.denialsUnrecorded.Inc()
		return
	}
	if err := s.deps.OAuth.RecordDenial(c.Request().Context(), t, c.Path(), d); err != nil {
		s.log.ErrorContext(c.Request().Context(), "record denial", slog.String("tenant", t.Slug.String()), slog.Any("error", err))
		return
	}
	s.log.InfoContext(c.Request().Context(), "denied", slog.String("tenant", t.Slug.String()), slog.String("denial_id", d.ID.String()),
		slog.String("check", string(d.Check)), slog.String("route", c.Path()), slog.String("client_id", d.ClientID),
		slog.String("agent_id", idString(d.AgentID)), slog.String("task_id", idString(d.TaskID)))
}

// writeOAuthDenial records d and answers in the OAuth error format.
func (s *Server) writeOAuthDenial(c echo.Context, d *oauth.Denial) error {
	s.record(c, tenantOf(c), d)
	status := d.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	body := oauthError{Error: d.OAuthError, ErrorDescription: d.Reason, Type: problemTypeBase + d.OAuthError,
		Title: http.StatusText(status), Status: status, Detail: string(d.Check) + ": " + d.Reason}
	if d.ID != uuid.Nil {
		body.DenialID = d.ID.String()
	}
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "no-store")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer error="invalid_client"`)
	}
	return writeJSON(c, status, "application/json", body)
}

// apiError writes err on the control-plane API: a denial, or a request
// refused as invalid, as problem+json with its recorded denial_id; anything
// else through the error handler.
func (s *Server) apiError(c echo.Context, err error) error {
	var d *oauth.Denial
	if !errors.As(err, &d) {
		if fault.KindOf(err) != fault.Invalid {
			return err
		}
		d = bodyDenial(http.StatusBadRequest, fault.Message(err))
	}
	if caller, ok := c.Get(callerKey).(*oauth.Caller); ok && d.ClientID == "" && d.AgentID == uuid.Nil {
		// A refusal nothing else names is the caller's own: let it read the trace.
		d.ClientID = caller.ClientID
		d.AgentID, d.TaskID = caller.AgentID, caller.TaskID
	}
	s.record(c, tenantOf(c), d)
	status := d.Status
	if status == 0 {
		status = http.StatusForbidden
	}
	p := newProblem(status, string(d.Check)+": "+d.Reason)
	if d.ID != uuid.Nil {
		p.DenialID = d.ID.String()
	}
	return p
}

func writeJSON(c echo.Context, status int, contentType string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, contentType, body)
}

func idString(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// tokenLatencyBuckets resolve the SPEC §7 targets (p99 ≤ 25 ms).
var tokenLatencyBuckets = []float64{.001, .002, .003, .005, .0075, .01, .015, .02, .025, .05, .1, .25, .5, 1}
