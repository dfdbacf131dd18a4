package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/winback/winback/config"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := config.Default()
	fs := newFlagSet("run", "Run the pipeline against real Kafka (or Redpanda), a schema registry and ClickHouse.\nIt applies the ClickHouse DDL at start, then consumes until SIGTERM or Ctrl-C.", stderr)
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	if err := noArgs(fs, ""); err != nil {
		return err
	}
	log := newLogger(&cfg, stderr)
	tuneRuntime(cfg.Runtime, log, memlimit.FromCgroup)
	return serve(ctx, &cfg, log, prometheus.NewRegistry(), nil)
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := newFlagSet("migrate", "Apply winback's ClickHouse tables and views (idempotent), then exit.", stderr)
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	if err := noArgs(fs, ""); err != nil {
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
	fs := newFlagSet("config", "Print every setting: YAML key, flag, environment variable, default and meaning (Markdown).\nWith --effective, print the settings in effect instead (flags, WINBACK_* env and --config\nover the defaults), as YAML that --config reads, with passwords redacted.", stderr)
	effective := fs.Bool("effective", false, "print the merged settings in effect (secrets redacted) instead of the reference")
	cfg := config.Default()
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	if err := noArgs(fs, ""); err != nil {
		return err
	}
	if !*effective {
		if fs.NFlag() > 0 {
			return usageError{errors.New("settings given without --effective; add it to print the settings they make")}
		}
		fmt.Fprint(stdout, config.Reference())
		return nil
	}
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(redacted(cfg)); err != nil {
		return err
	}
	return enc.Close()
}

// redacted is cfg with its secrets replaced: the SASL and registry
// passwords and the passwords in the ClickHouse DSN and registry URL.
func redacted(cfg config.Config) config.Config {
	if cfg.Kafka.SASL.Password != "" {
		cfg.Kafka.SASL.Password = config.Redacted
	}
	if cfg.Registry.Password != "" {
		cfg.Registry.Password = config.Redacted
	}
	cfg.ClickHouse.DSN = config.Redact(cfg.ClickHouse.DSN)
	cfg.Registry.URL = config.Redact(cfg.Registry.URL)
	return cfg
}
