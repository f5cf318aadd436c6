package policy

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
)

// WatcherPID is the backend pid of the service's listening session.
func (s *Service) WatcherPID() uint32 { return s.watcher.pid.Load() }

// WatcherReconnects counts the watcher's reconnections.
func (s *Service) WatcherReconnects() int64 { return s.watcher.reconnects.Load() }

// HoldReconnects makes the watcher call hold before each reconnection.
func (s *Service) HoldReconnects(hold func(context.Context)) { s.watcher.beforeReconnect.Store(&hold) }

// NewInMemory returns a service over fixed rules, without database or
// watcher, for benchmarks. rules maps a tenant to its Casbin lines.
func NewInMemory(rules map[uuid.UUID][][]string) (*Service, error) {
	s := &Service{log: slog.New(slog.DiscardHandler)}
	state := make(map[uuid.UUID]*tenantPolicy, len(rules))
	for id, lines := range rules {
		tp, err := compile(id, lines)
		if err != nil {
			return nil, err
		}
		state[id] = tp
	}
	s.state.Store(&state)
	return s, nil
}
