// Package web is chit's HTTP surface: it wires echo routes to the domain
// packages, and owns the mapping of errors to HTTP responses.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chitdev/chit/oauth"
	"github.com/chitdev/chit/tenants"
	"github.com/chitdev/chit/tenants/keyring"
)

// MaxBodyBytes bounds every request body (SPEC: over 1 MiB answers 413).
const MaxBodyBytes = 1 << 20

// Config is the server's typed configuration.
type Config struct {
	// BaseURL is the public URL issuers are built from, shared by replicas.
	BaseURL string
	// Version is shown on the front page.
	Version string
	// DenialBudget bounds how many refusals a tenant's trail records per second.
	DenialBudget DenialBudget
}

// ParseBaseURL validates a --base-url value: absolute http(s), no query or
// fragment. The result has no trailing slash.
func ParseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("--base-url %q must be an absolute http(s) URL without credentials, query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// TenantDirectory finds tenants by slug.
type TenantDirectory interface {
	BySlug(ctx context.Context, slug string) (*tenants.Tenant, error)
}

// KeyPublisher lists the signing keys a tenant publishes.
type KeyPublisher interface {
	Published(ctx context.Context, tenantID uuid.UUID) ([]keyring.PublicKey, error)
}

// Deps are what the handlers need from the rest of chit.
type Deps struct {
	OAuth   *oauth.Service
	Tenants TenantDirectory
	Keys    KeyPublisher
	Ready   func(ctx context.Context) error // nil when ready to serve
	// Outstanding counts live agents and valid tokens over all tenants, for
	// the gauges; nil leaves them out.
	Outstanding func(ctx context.Context) (agents, tokens int, err error)
	Registry    *prometheus.Registry
	Logger      *slog.Logger
	// Console serves the web console for security teams; nil leaves it out.
	Console *ConsoleDeps
}

// Server is chit's HTTP server.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	echo    *echo.Echo
	metrics *credentialMetrics
	budget  denialBudget
	console *ConsoleDeps
}

// New builds the server and its routes.
func New(cfg Config, deps Deps) (*Server, error) {
	base, err := ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, echo: echo.New(), console: deps.Console}
	s.budget.cfg = cfg.DenialBudget
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler

	metrics := newHTTPMetrics(deps.Registry)
	s.metrics = newCredentialMetrics(deps.Registry)
	if deps.Outstanding != nil {
		registerOutstanding(deps.Registry, deps.Outstanding, s.log)
	}
	e.Use(
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: func() string { return uuid.NewString() }}),
		metrics.middleware,
		s.accessLog,
		middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}),
		limitBody(),
		securityHeaders,
	)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	e := s.echo
	e.GET("/", s.home)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))

	// RFC 8414 §3: the well-known segment goes between host and issuer path.
	e.GET("/.well-known/oauth-authorization-server/t/:tenant", s.metadata, s.withTenant)
	t := e.Group("/t/:tenant", s.withTenant)
	t.GET("/.well-known/oauth-authorization-server", s.metadata)
	t.GET("/jwks.json", s.jwks)
	if s.console != nil {
		s.consoleRoutes()
	}
	if s.deps.OAuth == nil {
		return
	}
	t.POST("/oauth2/token", s.token)
	t.POST("/oauth2/introspect", s.introspect)
	t.POST("/oauth2/revoke", s.revoke)

	v1 := t.Group("/v1")
	v1.POST("/agents/challenge", s.challenge)
	v1.POST("/agents/register", s.register)
	api := v1.Group("", s.withBearer)
	api.POST("/tasks", s.createTask)
	api.POST("/tasks/:task_id/launch-tokens", s.taskLaunchToken)
	api.POST("/tasks/:task_id/complete", s.completeTask)
	api.POST("/agents/:agent_id/launch-tokens", s.agentLaunchToken)
	api.POST("/agents/:agent_id/heartbeat", s.heartbeat)
	api.GET("/denials/:denial_id", s.denial)
	api.POST("/revocations", s.revokeLevel)
	api.GET("/revocations", s.revocationFeed)
	api.GET("/audit", s.auditEvents)
	api.GET("/audit/keys", s.auditKeys)
	api.GET("/audit/checkpoints", s.auditCheckpoints)
	api.GET("/audit/export", s.auditExport)
}

// Handler is the server as an http.Handler, for tests.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve answers on ln until ctx is cancelled, then drains in-flight
// requests for up to 10 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		// The path only, never the query: nothing secret travels in a URL,
		// but nothing in a URL is logged either.
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "http",
			slog.String("request_id", requestID(c)),
			slog.String("method", c.Request().Method),
			slog.String("route", c.Path()),
			slog.String("path", c.Request().URL.Path),
			slog.Int("status", c.Response().Status),
			slog.Duration("duration", time.Since(start)),
			slog.String("tenant", c.Param("tenant")),
		)
		return nil
	}
}

func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.log.ErrorContext(c.Request().Context(), "panic in handler",
		slog.String("request_id", requestID(c)), slog.String("route", c.Path()),
		slog.Any("error", err), slog.String("stack", string(stack)))
	return err
}

// limitBody bounds every request body at MaxBodyBytes. The OAuth endpoints
// and the API read their bodies themselves and answer 413 in their own
// format, with a denial trace; elsewhere echo answers a plain 413.
func limitBody() echo.MiddlewareFunc {
	plain := middleware.BodyLimit(fmt.Sprint(MaxBodyBytes))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		guarded := plain(next)
		return func(c echo.Context) error {
			if p := c.Path(); strings.HasPrefix(p, "/t/:tenant/oauth2/") || strings.HasPrefix(p, "/t/:tenant/v1/") {
				c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes)
				return next(c)
			}
			return guarded(c)
		}
	}
}

func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}
