package migrations

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
)

// NewProvider exposes chit's goose provider to migration tests, to migrate
// step by step.
func NewProvider(pool *pgxpool.Pool) (*goose.Provider, error) { return newProvider(pool) }
