package main

import (
	"context"
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winback/winback/config"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := config.Default()
	fs := newFlagSet("run", "Run the pipeline against real Kafka (or Redpanda), a schema registry and ClickHouse.\nIt applies the ClickHouse DDL at start, then consumes until SIGTERM or Ctrl-C.", stderr)
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	log := newLogger(&cfg, stderr)
	return serve(ctx, &cfg, log, prometheus.NewRegistry(), nil)
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := newFlagSet("migrate", "Apply winback's ClickHouse tables and views (idempotent), then exit.", stderr)
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	log := newLogger(&cfg, stderr)
	sink, err := openClickHouse(ctx, &cfg, log, nil)
	if err != nil {
		return err
	}
	defer sink.Close()
	if err := migrate(ctx, sink, log); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "migrated database %s on ClickHouse %s\n", cfg.ClickHouse.Database, sink.ServerVersion())
	return nil
}

func cmdConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config", "Print every setting: YAML key, flag, environment variable, default and meaning (Markdown).", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprint(stdout, config.Reference())
	return nil
}
