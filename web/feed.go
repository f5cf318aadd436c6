package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/chitdev/chit/oauth"
)

// Feed streaming cadence: how often the stream looks for new revocations,
// and how often it proves it is alive when there are none.
const (
	feedPoll      = 250 * time.Millisecond
	feedKeepalive = 15 * time.Second
)

// revocationFeed serves GET /v1/revocations: a page of JSON, or with
// `Accept: text/event-stream` the same objects as a stream of events whose
// ids are cursors (a reconnecting client resumes with Last-Event-ID).
func (s *Server) revocationFeed(c echo.Context) error {
	req := c.Request()
	from := c.QueryParam("after")
	if from == "" {
		from = req.Header.Get("Last-Event-ID")
	}
	after, err := oauth.ParseFeedCursor(from)
	if err != nil {
		return s.apiError(c, err)
	}
	limit := 0
	if l := c.QueryParam("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > oauth.MaxFeedPage {
			return newProblem(http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d", oauth.MaxFeedPage))
		}
	}
	t, caller := tenantOf(c), callerOf(c)
	feed, err := s.deps.OAuth.RevocationFeed(req.Context(), t, caller, after, limit)
	if err != nil {
		return s.apiError(c, err)
	}
	if !strings.Contains(req.Header.Get(echo.HeaderAccept), "text/event-stream") {
		s.observeFeed(feed)
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		return c.JSON(http.StatusOK, feed)
	}

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-store")
	c.Response().WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.Response().Writer)
	poll := time.NewTicker(feedPoll)
	defer poll.Stop()
	quiet := time.Now()
	for {
		// The server's write timeout would end a long stream: extend it per write.
		_ = rc.SetWriteDeadline(time.Now().Add(feedKeepalive + 10*time.Second))
		s.observeFeed(feed)
		for _, it := range feed.Revocations {
			data, err := json.Marshal(it)
			if err != nil {
				return nil
			}
			if _, err := fmt.Fprintf(c.Response(), "id: %s\nevent: revocation\ndata: %s\n\n", it.Cursor, data); err != nil {
				return nil
			}
			quiet = time.Now()
		}
		if time.Since(quiet) >= feedKeepalive {
			if _, err := fmt.Fprint(c.Response(), ": keepalive\n\n"); err != nil {
				return nil
			}
			quiet = time.Now()
		}
		c.Response().Flush()
		select {
		case <-req.Context().Done():
			return nil
		case <-poll.C:
		}
		if after, err = oauth.ParseFeedCursor(feed.NextCursor); err != nil {
			return nil
		}
		if feed, err = s.deps.OAuth.RevocationFeed(req.Context(), t, caller, after, limit); err != nil {
			return nil // the stream ends; the client resumes from its last event id
		}
	}
}

// observeFeed records how old each revocation is as the feed delivers it.
func (s *Server) observeFeed(feed *oauth.Feed) {
	for _, it := range feed.Revocations {
		s.metrics.feedLag.Observe(time.Since(it.RevokedAt).Seconds())
	}
}
