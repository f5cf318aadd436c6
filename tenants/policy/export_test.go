package policy

import (
	"context"
)

// WatcherPID is the backend pid of the service's listening session.
func (s *Service) WatcherPID() uint32 { return s.watcher.pid.Load() }

// WatcherReconnects counts the watcher's reconnections.
func (s *Service) WatcherReconnects() int64 { return s.watcher.reconnects.Load() }

// HoldReconnects makes the watcher call hold before each reconnection.
func (s *Service) HoldReconnects(hold func(context.Context)) { s.watcher.beforeReconnect.Store(&hold) }
