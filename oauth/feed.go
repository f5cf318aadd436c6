package oauth

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
	"github.com/chitdev/chit/tenants"
)

// FeedItem is one revocation as resource servers read it.
type FeedItem struct {
	ID        uuid.UUID  `json:"revocation_id"`
	Cursor    string     `json:"cursor"`
	Level     string     `json:"level"`
	Target    string     `json:"target"`
	TaskID    *uuid.UUID `json:"task_id"`
	Reason    string     `json:"reason"`
	RevokedAt time.Time  `json:"revoked_at"`
}

// Feed is a page of the revocation feed.
type Feed struct {
	Revocations []FeedItem `json:"revocations"`
	NextCursor  string     `json:"next_cursor"`
}

// MaxFeedPage bounds one page of the feed.
const MaxFeedPage = 1000

// FeedCursor is a position in the feed: the transaction id and the sequence
// of the last revocation read, as "xid.seq". The zero cursor is the start.
type FeedCursor struct {
	xid uint64
	seq int64
}

// String is the cursor's wire form.
func (c FeedCursor) String() string {
	return strconv.FormatUint(c.xid, 10) + "." + strconv.FormatInt(c.seq, 10)
}

// ParseFeedCursor reads a cursor; "" is the start of the feed.
func ParseFeedCursor(s string) (FeedCursor, error) {
	if s == "" {
		return FeedCursor{}, nil
	}
	x, q, ok := strings.Cut(s, ".")
	xid, err1 := strconv.ParseUint(x, 10, 64)
	seq, err2 := strconv.ParseInt(q, 10, 64)
	if !ok || err1 != nil || err2 != nil || seq < 0 {
		return FeedCursor{}, fault.InvalidField("after", "is not a cursor returned by this feed")
	}
	return FeedCursor{xid: xid, seq: seq}, nil
}

// RevocationFeed returns revocations after cursor, oldest first: task
// completions appear as `task` revocations. Only clients holding the
// `feed` rule read it. A revocation appears once every transaction that
// began before it has ended (normally milliseconds), so positions never
// move backwards.
func (s *Service) RevocationFeed(ctx context.Context, t *tenants.Tenant, caller *Caller, after FeedCursor, limit int) (*Feed, error) {
	if caller.IsAgent() {
		return nil, apiDenial(http.StatusForbidden, CheckPolicy, "agents do not read the revocation feed")
	}
	if g := s.checkClient(t, caller.ClientID, "feed"); !g.Allowed {
		d := apiDenial(http.StatusForbidden, CheckPolicy, "this client holds no feed rule")
		d.ClientID, d.Rule = caller.ClientID, ruleTrace(g)
		return nil, d
	}
	if limit <= 0 || limit > MaxFeedPage {
		limit = MaxFeedPage
	}
	feed := &Feed{Revocations: []FeedItem{}, NextCursor: after.String()}
	b := pgstore.NewTenantBatch(t.ID)
	b.Queue(`
		SELECT id, cursor, xid::text, level, target, task_id, reason, revoked_at FROM revocations
		 WHERE (xid, cursor) > ($1::text::xid8, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot())
		 ORDER BY xid, cursor LIMIT $3`, strconv.FormatUint(after.xid, 10), after.seq, limit).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var it FeedItem
				var c FeedCursor
				var xid string
				if err := rows.Scan(&it.ID, &c.seq, &xid, &it.Level, &it.Target, &it.TaskID, &it.Reason, &it.RevokedAt); err != nil {
					return err
				}
				c.xid, _ = strconv.ParseUint(xid, 10, 64)
				it.Cursor, it.RevokedAt = c.String(), it.RevokedAt.UTC()
				feed.Revocations = append(feed.Revocations, it)
				feed.NextCursor = it.Cursor
			}
			return rows.Err()
		})
	if err := s.db.SendBatch(ctx, b); err != nil {
		return nil, err
	}
	return feed, nil
}
