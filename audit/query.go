package audit

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
)

// Filter selects events for attribution; zero fields do not filter.
type Filter struct {
	AgentID   uuid.UUID
	TaskID    uuid.UUID
	Principal string
	ClientID  string
	Type      Type
	From, To  time.Time // [From, To)
	Cursor    string    // from the previous page's NextCursor
	Limit     int
}

// Page is one page of events, newest first.
type Page struct {
	Events     []PageEvent `json:"events"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// PageEvent is an event as the API lists it.
type PageEvent struct {
	ID           uuid.UUID      `json:"id"`
	Time         time.Time      `json:"time"`
	Type         Type           `json:"type"`
	Outcome      Outcome        `json:"outcome"`
	Actor        string         `json:"actor"`
	Principal    string         `json:"principal,omitempty"`
	ClientID     string         `json:"client_id,omitempty"`
	TaskID       *uuid.UUID     `json:"task_id,omitempty"`
	AgentID      *uuid.UUID     `json:"agent_id,omitempty"`
	TokenID      *uuid.UUID     `json:"token_id,omitempty"`
	DenialID     *uuid.UUID     `json:"denial_id,omitempty"`
	RevocationID *uuid.UUID     `json:"revocation_id,omitempty"`
	Detail       map[string]any `json:"detail"`
}

// MaxPage bounds a page of events.
const MaxPage = 500

// Query lists the tenant's events matching f, newest first, a page at a time.
func Query(ctx context.Context, db *pgstore.DB, tenantID uuid.UUID, f Filter) (*Page, error) {
	if f.Limit <= 0 || f.Limit > MaxPage {
		f.Limit = MaxPage
	}
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.AgentID != uuid.Nil {
		where = append(where, "agent_id = "+arg(f.AgentID))
	}
	if f.TaskID != uuid.Nil {
		where = append(where, "task_id = "+arg(f.TaskID))
	}
	if f.Principal != "" {
		where = append(where, "principal = "+arg(f.Principal))
	}
	if f.ClientID != "" {
		where = append(where, "client_id = "+arg(f.ClientID))
	}
	if f.Type != "" {
		where = append(where, "type = "+arg(string(f.Type)))
	}
	if !f.From.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "occurred_at < "+arg(f.To))
	}
	if f.Cursor != "" {
		at, id, err := parseCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		where = append(where, fmt.Sprintf("(occurred_at, id) < (%s, %s)", arg(at), arg(id)))
	}
	page := &Page{Events: []PageEvent{}}
	err := db.InTenantTx(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, occurred_at, type, outcome, actor, coalesce(principal, ''), coalesce(client_id, ''),
			       task_id, agent_id, token_id, denial_id, revocation_id, detail
			  FROM audit_events WHERE `+strings.Join(where, " AND ")+`
			 ORDER BY occurred_at DESC, id DESC LIMIT `+arg(f.Limit), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e PageEvent
			if err := rows.Scan(&e.ID, &e.Time, &e.Type, &e.Outcome, &e.Actor, &e.Principal, &e.ClientID, &e.TaskID,
				&e.AgentID, &e.TokenID, &e.DenialID, &e.RevocationID, &e.Detail); err != nil {
				return err
			}
			e.Time = e.Time.UTC()
			page.Events = append(page.Events, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	if len(page.Events) == f.Limit {
		last := page.Events[len(page.Events)-1]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(last.Time.Format(time.RFC3339Nano) + "|" + last.ID.String()))
	}
	return page, nil
}

func parseCursor(c string) (time.Time, uuid.UUID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, uuid.Nil, fault.InvalidField("cursor", "is not a cursor of this listing")
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	at, err1 := time.Parse(time.RFC3339Nano, ts)
	uid, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, uuid.Nil, fault.InvalidField("cursor", "is not a cursor of this listing")
	}
	return at, uid, nil
}
