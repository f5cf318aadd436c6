package policy

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2/persist"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chitdev/chit/internal/fault"
	"github.com/chitdev/chit/internal/pgstore"
)

// Channel is the PostgreSQL notification channel of policy changes. The
// payload is the changed tenant's id, or ReloadAll.
const Channel = "chit_policy"

// ReloadAll is the payload asking every replica to reload every tenant.
const ReloadAll = "*"

// Watcher is a Casbin watcher on LISTEN/NOTIFY. It holds one dedicated
// connection (outside the pool: a listening session must stay the same
// session) and calls its callback with each notification's payload. When
// the connection is lost it reconnects with backoff and then calls the
// callback with ReloadAll, since notifications sent meanwhile are lost.
//
// Notifications are sent by the transaction of the change (NotifyTx), so
// they are delivered only if it commits, and after it has.
type Watcher struct {
	db     *pgstore.DB
	log    *slog.Logger
	cfg    *pgx.ConnConfig
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	callback func(string)

	pid        atomic.Uint32 // backend pid of the listening session, for tests
	reconnects atomic.Int64

	// beforeReconnect, when set (by tests), runs before each reconnection.
	beforeReconnect atomic.Pointer[func(context.Context)]
}

var _ persist.Watcher = (*Watcher)(nil)

// Watcher timing.
const (
	// idleProbe: a listening session that has heard nothing this long is
	// pinged, so a silently dead connection is noticed.
	idleProbe      = 15 * time.Second
	probeTimeout   = 5 * time.Second
	connectTimeout = 5 * time.Second
	backoffMin     = 50 * time.Millisecond
	backoffMax     = 5 * time.Second
)

// NewWatcher opens the listening session and starts watching. It fails if
// it cannot listen now; later losses are retried for ever (until Close).
func NewWatcher(ctx context.Context, db *pgstore.DB, log *slog.Logger) (*Watcher, error) {
	w := newWatcher(db, log)
	conn, err := w.connect(ctx)
	if err != nil {
		w.cancel()
		return nil, err
	}
	go w.run(conn)
	return w, nil
}

func newWatcher(db *pgstore.DB, log *slog.Logger) *Watcher {
	cfg := db.Pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "chit-policy-watcher"
	ctx, cancel := context.WithCancel(context.Background())
	return &Watcher{db: db, log: log, cfg: cfg, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// SetUpdateCallback sets the function called with each change's payload.
func (w *Watcher) SetUpdateCallback(f func(string)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.callback = f
	return nil
}

// Update asks every replica (this one included) to reload every tenant.
// Service's own changes notify per tenant, in their transaction.
func (w *Watcher) Update() error {
	_, err := w.db.Pool.Exec(w.ctx, "SELECT pg_notify($1, $2)", Channel, ReloadAll)
	return pgstore.Interpret(err)
}

// Close stops watching and waits for the watcher to end; the callback is
// not called any more once Close returns.
func (w *Watcher) Close() {
	w.cancel()
	<-w.done
}

// NotifyTx announces a change of tenantID's rules when tx commits.
func NotifyTx(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) error {
	_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, tenantID.String())
	return pgstore.Interpret(err)
}

func (w *Watcher) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, w.cfg)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "policy watcher cannot connect to the database")
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		_ = conn.Close(context.Background())
		return nil, fault.Wrap(err, fault.Unavailable, "policy watcher cannot listen")
	}
	w.pid.Store(conn.PgConn().PID())
	return conn, nil
}

func (w *Watcher) run(conn *pgx.Conn) {
	defer close(w.done)
	for {
		err := w.listen(conn)
		_ = conn.Close(context.Background())
		if w.ctx.Err() != nil {
			return
		}
		w.log.Warn("policy watcher lost its connection; reconnecting", "err", err)
		if conn = w.reconnect(); conn == nil {
			return
		}
		w.reconnects.Add(1)
		w.log.Info("policy watcher reconnected; reloading every tenant's policy")
		// Changes committed while nobody listened sent notifications
		// nobody heard: reload everything.
		w.notify(ReloadAll)
	}
}

// listen delivers notifications until the connection fails or Close.
func (w *Watcher) listen(conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(w.ctx, idleProbe)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			w.notify(n.Payload)
		case w.ctx.Err() != nil:
			return w.ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			probeCtx, cancel := context.WithTimeout(w.ctx, probeTimeout)
			err = conn.Ping(probeCtx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// reconnect retries with capped, jittered exponential backoff; nil after Close.
func (w *Watcher) reconnect() *pgx.Conn {
	if hold := w.beforeReconnect.Load(); hold != nil {
		(*hold)(w.ctx)
	}
	delay := backoffMin
	for attempt := 1; ; attempt++ {
		conn, err := w.connect(w.ctx)
		if err == nil {
			return conn
		}
		if w.ctx.Err() != nil {
			return nil
		}
		w.log.Warn("policy watcher cannot reconnect yet", "attempt", attempt, "err", err)
		jittered := delay/2 + rand.N(delay/2+1)
		select {
		case <-w.ctx.Done():
			return nil
		case <-time.After(jittered):
		}
		delay = min(2*delay, backoffMax)
	}
}

func (w *Watcher) notify(payload string) {
	w.mu.Lock()
	f := w.callback
	w.mu.Unlock()
	if f != nil {
		f(payload)
	}
}
