package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/ui"
)

// healthz says the process is alive; it checks nothing else.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether this replica can serve: database reachable and its
// schema current.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if s.deps.Ready != nil {
		if err := s.deps.Ready(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", "error", err)
			return newProblem(http.StatusServiceUnavailable, "not ready: "+err.Error())
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// home renders the front page into a buffer first, so a render error never
// sends half a page.
func (s *Server) home(c echo.Context) error {
	var buf bytes.Buffer
	if err := ui.Home(ui.HomeProps{Version: s.cfg.Version}).Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

func jsonEncode(c echo.Context, v any) error {
	return json.NewEncoder(c.Response()).Encode(v)
}
