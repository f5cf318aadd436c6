package main

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/chitdev/chit/migrations"
)

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply chit's and River's database migrations (idempotent, safe to run concurrently)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := a.databaseURL()
			if err != nil {
				return err
			}
			// Migrations run as the login role, which owns the schema.
			pool, err := pgxpool.New(cmd.Context(), u)
			if err != nil {
				return fmt.Errorf("connect: %w", err)
			}
			defer pool.Close()
			res, err := migrations.Up(cmd.Context(), pool, a.logger())
			if err != nil {
				return err
			}
			text := fmt.Sprintf("schema at version %d (%d applied now); river migrations applied now: %d\n",
				res.Version, len(res.Applied), len(res.RiverApplied))
			return a.print(map[string]any{
				"version": res.Version, "applied": nonNil(res.Applied), "river_applied": nonNil(res.RiverApplied),
			}, text)
		},
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
