package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/internal/fault"
)

func (s *Server) auditKeys(c echo.Context) error {
	keys, err := s.deps.OAuth.AuditKeys(c.Request().Context(), tenantOf(c), callerOf(c))
	if err != nil {
		return s.apiError(c, err)
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/jwk-set+json")
	return writeJSON(c, http.StatusOK, "application/jwk-set+json", map[string]any{"keys": keys})
}

func (s *Server) auditCheckpoints(c echo.Context) error {
	after, err := strconv.ParseInt(c.QueryParam("after"), 10, 64)
	if c.QueryParam("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		return s.apiError(c, fault.InvalidField("after", "must be a checkpoint seq"))
	}
	list, err := s.deps.OAuth.AuditCheckpoints(c.Request().Context(), tenantOf(c), callerOf(c), after, 1000)
	if err != nil {
		return s.apiError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"checkpoints": list})
}

// auditExport streams the trail for [from, to) as JSON Lines or CSV.
func (s *Server) auditExport(c echo.Context) error {
	if err := s.deps.OAuth.AuditAllowed(callerOf(c)); err != nil {
		return s.apiError(c, err)
	}
	parse := func(name string, def time.Time) (time.Time, error) {
		v := c.QueryParam(name)
		if v == "" {
			return def, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return t, fault.InvalidField(name, "must be an RFC 3339 time")
		}
		return t, nil
	}
	from, err := parse("from", time.Unix(0, 0))
	if err != nil {
		return s.apiError(c, err)
	}
	to, err := parse("to", time.Now().Add(time.Minute))
	if err != nil {
		return s.apiError(c, err)
	}
	format := c.QueryParam("format")
	contentType := "application/jsonl"
	switch format {
	case "", "jsonl":
		format = "jsonl"
	case "csv":
		contentType = "text/csv"
	default:
		return s.apiError(c, fault.InvalidField("format", "must be jsonl or csv"))
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, contentType)
	h.Set(echo.HeaderContentDisposition, `attachment; filename="audit-`+string(tenantOf(c).Slug)+`.`+format+`"`)
	h.Set(echo.HeaderCacheControl, "no-store")
	c.Response().WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.Response().Writer)
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Minute)) // a large range takes a while
	if err := s.deps.OAuth.AuditExport(c.Request().Context(), tenantOf(c), callerOf(c), from, to, format, c.Response()); err != nil {
		s.log.ErrorContext(c.Request().Context(), "audit export failed mid-stream", "tenant", tenantOf(c).Slug.String(), "error", err)
	}
	return nil
}
