package web

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chitdev/chit/oauth"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a Prometheus registry with Go runtime and process metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chit_http_requests_total",
			Help: "HTTP requests by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chit_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// middleware records each request under its route template, never its raw
// path, so tenant slugs and ids do not explode the label space.
func (m *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the error now so its status is what we record
		}
		route := c.Path()
		if route == "" || route == "/*" {
			route = "unmatched"
		}
		method := c.Request().Method
		m.requests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// credentialMetrics are SPEC §6's issuing-side metrics.
type credentialMetrics struct {
	issuance          *prometheus.HistogramVec
	denials           *prometheus.CounterVec
	scopeRejections   prometheus.Counter
	denialsUnrecorded prometheus.Counter
	delegationDepth   prometheus.Histogram
	feedLag           prometheus.Histogram
	lifetimeRatio     prometheus.Histogram
	timeLeft          prometheus.Histogram
}

func newCredentialMetrics(reg prometheus.Registerer) *credentialMetrics {
	m := &credentialMetrics{
		issuance: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chit_token_issuance_seconds", Help: "Token endpoint latency of successful issuance, by grant.",
			Buckets: tokenLatencyBuckets,
		}, []string{"grant"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chit_denials_total", Help: "Refused requests by the check that failed.",
		}, []string{"check"}),
		scopeRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chit_scope_rejections_total", Help: "Requests refused for asking more scope than held (rate: divide by issuance count).",
		}),
		denialsUnrecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chit_denials_unrecorded_total", Help: "Refusals over the per-tenant recording budget: answered, counted, not written.",
		}),
		delegationDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chit_delegation_depth", Help: "Depth of newly registered agents (1 = launched by an orchestrator).",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 12, 16},
		}),
	}
	m.feedLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chit_revocation_propagation_seconds",
		Help:    "Time from a revocation to its delivery to a resource server by the feed (page or stream).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.lifetimeRatio = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chit_task_credential_lifetime_ratio",
		Help:    "At task completion: the span its credentials were valid for (first issue to last expiry) divided by the task's duration.",
		Buckets: []float64{0.5, 1, 1.25, 1.5, 2, 3, 5, 10, 20, 50, 100},
	})
	m.timeLeft = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chit_task_credential_time_left_seconds",
		Help:    "At task completion: the validity its live tokens still had, cut off by the completion's revocation.",
		Buckets: []float64{0, 1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600},
	})
	reg.MustRegister(m.issuance, m.denials, m.scopeRejections, m.denialsUnrecorded, m.delegationDepth, m.feedLag,
		m.lifetimeRatio, m.timeLeft)
	return m
}

// observeCompletion records how a completed task's credentials compare
// with the task (SPEC §6: credential lifetime vs task duration).
func (m *credentialMetrics) observeCompletion(c *oauth.Completion) {
	if c.Duration > 0 && c.CredentialSpan > 0 {
		m.lifetimeRatio.Observe(c.CredentialSpan.Seconds() / c.Duration.Seconds())
	}
	m.timeLeft.Observe(c.TimeLeft.Seconds())
}

// registerOutstanding adds the live-agents and tokens-outstanding gauges.
// Counting costs two queries per tenant, so a scrape reuses a count up to
// 10 s old.
func registerOutstanding(reg prometheus.Registerer, count func(context.Context) (int, int, error), log *slog.Logger) {
	var mu sync.Mutex
	var agents, tokens int
	var at time.Time
	read := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > 10*time.Second {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a, t, err := count(ctx)
			if err != nil {
				log.Warn("count outstanding credentials", "error", err)
				return agents, tokens
			}
			agents, tokens, at = a, t, time.Now()
		}
		return agents, tokens
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chit_live_agents", Help: "Agents neither revoked nor of a finished task."},
			func() float64 { a, _ := read(); return float64(a) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chit_tokens_outstanding", Help: "Access tokens neither revoked nor expired."},
			func() float64 { _, t := read(); return float64(t) }),
	)
}
