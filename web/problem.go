package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/internal/fault"
)

// Problem is an RFC 9457 problem details object. It is the only error
// body chit's API writes.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	DenialID string `json:"denial_id,omitempty"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// problemTypeBase prefixes every problem type URI.
const problemTypeBase = "urn:chit:problem:"

// statusOf is the one table from fault kinds to HTTP statuses.
var statusOf = map[fault.Kind]int{
	fault.Invalid:         http.StatusBadRequest,
	fault.Unauthenticated: http.StatusUnauthorized,
	fault.Forbidden:       http.StatusForbidden,
	fault.NotFound:        http.StatusNotFound,
	fault.Conflict:        http.StatusConflict,
	fault.Unavailable:     http.StatusServiceUnavailable,
	fault.Internal:        http.StatusInternalServerError,
}

// problemFor turns any error a handler returns into the problem the caller
// sees. Unclassified errors become a bare 500: their text stays in the log.
func problemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		// echo's own refusals (404 route, 405, 413 body limit, 415).
		detail := ""
		if msg, ok := he.Message.(string); ok && he.Code < 500 {
			detail = msg
		}
		return newProblem(he.Code, detail)
	}
	kind := fault.KindOf(err)
	return newProblem(statusOf[kind], fault.Message(err))
}

func newProblem(status int, detail string) *Problem {
	title := http.StatusText(status)
	if title == "" {
		title = "Error"
	}
	slug := map[int]string{
		400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
		405: "method-not-allowed", 409: "conflict", 413: "too-large", 415: "unsupported-media-type",
		429: "too-many-requests", 503: "unavailable",
	}[status]
	if slug == "" {
		slug = "internal"
		if status < 500 {
			slug = "bad-request"
		}
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		detail = "Internal error."
	}
	return &Problem{Type: problemTypeBase + slug, Title: title, Status: status, Detail: detail}
}

// errorHandler is echo's HTTPErrorHandler: every error leaves chit through here.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := problemFor(err)
	if p.Status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed",
			slog.String("request_id", requestID(c)), slog.String("route", c.Path()), slog.Any("error", err))
	}
	if isConsole(c) && s.console != nil {
		s.consoleError(c, p)
		return
	}
	writeProblem(c, p)
}

func writeProblem(c echo.Context, p *Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"urn:chit:problem:internal","title":"Internal Server Error","status":500}`)
	}
	if c.Request().Method == http.MethodHead {
		body = nil
	}
	_ = c.Blob(p.Status, "application/problem+json", body)
}
