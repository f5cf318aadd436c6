package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/audit"
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
	format, contentType, err := exportFormat(c.QueryParam("format"))
	if err != nil {
		return s.apiError(c, err)
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

// exportFormat reads an export's format (JSON Lines by default) and its
// content type.
func exportFormat(v string) (format, contentType string, err error) {
	switch v {
	case "", "jsonl":
		return "jsonl", "application/jsonl", nil
	case "csv":
		return "csv", "text/csv", nil
	}
	return "", "", fault.InvalidField("format", "must be jsonl or csv")
}

// auditEvents serves GET /v1/audit: attribution by agent, task, principal,
// client, type and time, newest first, with cursor paging.
func (s *Server) auditEvents(c echo.Context) error {
	q := c.QueryParams()
	for k := range q {
		switch k {
		case "agent_id", "task_id", "principal", "client_id", "type", "from", "to", "cursor", "limit":
		default:
			return s.apiError(c, fault.InvalidField(k, "is not a filter of this listing"))
		}
	}
	var f audit.Filter
	var err error
	if v := q.Get("agent_id"); v != "" {
		if f.AgentID, err = uuid.Parse(v); err != nil {
			return s.apiError(c, fault.InvalidField("agent_id", "must be a UUID"))
		}
	}
	if v := q.Get("task_id"); v != "" {
		if f.TaskID, err = uuid.Parse(v); err != nil {
			return s.apiError(c, fault.InvalidField("task_id", "must be a UUID"))
		}
	}
	f.Principal, f.ClientID, f.Type, f.Cursor = q.Get("principal"), q.Get("client_id"), audit.Type(q.Get("type")), q.Get("cursor")
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			if *dst, err = time.Parse(time.RFC3339, v); err != nil {
				return s.apiError(c, fault.InvalidField(name, "must be an RFC 3339 time"))
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > audit.MaxPage {
			return s.apiError(c, fault.InvalidField("limit", "must be 1 to 500"))
		}
	}
	page, err := s.deps.OAuth.AuditQuery(c.Request().Context(), tenantOf(c), callerOf(c), f)
	if err != nil {
		return s.apiError(c, err)
	}
	return c.JSON(http.StatusOK, page)
}
