package config

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	cfg := Default()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l := Bind(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	err := l.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return cfg, err
}

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) < 2 {
		t.Fatalf("expected good testdata files, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := load(t, []string{"--config", f}, nil); err != nil {
				t.Fatalf("load %s: %v", f, err)
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	// Each bad file must fail, and the message must name what to fix.
	want := map[string]string{
		"unknown-key.bad.yaml":       "brokerz",
		"bad-broker.bad.yaml":        "--kafka-brokers",
		"same-topic.bad.yaml":        "--topics-triggers",
		"bad-format.bad.yaml":        "--trigger-format",
		"bad-dsn.bad.yaml":           "--clickhouse-dsn",
		"bad-duration.bad.yaml":      "soon",
		"sasl-no-user.bad.yaml":      "--kafka-sasl-username",
		"zero-batch.bad.yaml":        "--clickhouse-batch-rows",
		"negative-liveness.bad.yaml": "--kafka-liveness-timeout",
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := load(t, []string{"--config", f}, nil)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if w := want[filepath.Base(f)]; !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not mention %q", err, w)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	// file < env < flag, and untouched settings keep the defaults.
	cfg, err := load(t,
		[]string{"--config", "testdata/full.good.yaml", "--clickhouse-batch-rows", "7"},
		map[string]string{"WINBACK_CLICKHOUSE_BATCH_ROWS": "3", "WINBACK_TOPICS_DLQ": "env.dlq", "WINBACK_KAFKA_SASL_PASSWORD": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	f("batch rows (flag over env over file)", cfg.ClickHouse.BatchRows, 7)
	f("dlq (env over file)", cfg.Topics.DLQ, "env.dlq")
	f("orders (file)", cfg.Topics.Orders, "shop.orders")
	f("flush interval (file)", cfg.ClickHouse.FlushInterval, 2*time.Second)
	f("password (env)", cfg.Kafka.SASL.Password, "pw")
	f("brokers", strings.Join(cfg.Kafka.Brokers, ","), "kafka-1:9092,kafka-2:9092")
	f("shutdown timeout (default)", cfg.ShutdownTimeout, Default().ShutdownTimeout)
}

func TestBadFlagAndEnv(t *testing.T) {
	if _, err := load(t, []string{"--commit-interval", "often"}, nil); err == nil {
		t.Fatal("bad duration flag accepted")
	}
	_, err := load(t, nil, map[string]string{"WINBACK_MAX_POLL_RECORDS": "many"})
	if err == nil || !strings.Contains(err.Error(), "WINBACK_MAX_POLL_RECORDS") {
		t.Fatalf("bad env: %v", err)
	}
	if _, err := load(t, []string{"--config", "testdata/missing.yaml"}, nil); err == nil {
		t.Fatal("missing config file accepted")
	}
}

func TestValidateReportsAll(t *testing.T) {
	cfg := Default()
	cfg.Kafka.Brokers = nil
	cfg.LogFormat = "xml"
	cfg.HTTPAddr = "nope"
	err := cfg.Validate()
	for _, w := range []string{"--kafka-brokers", "--log-format", "--http-addr"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not name %s", err, w)
		}
	}
}

func TestDefaultsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestReferenceCoversEverySetting(t *testing.T) {
	ref := Reference()
	cfg := Default()
	for _, s := range Settings(&cfg) {
		if s.Type != "map" && (!strings.Contains(ref, "`--"+s.Flag+"`") || !strings.Contains(ref, s.Env)) {
			t.Errorf("reference lacks %s", s.Key)
		}
		if !strings.Contains(ref, "`"+s.Key+"`") {
			t.Errorf("reference lacks key %s", s.Key)
		}
		if s.Help == "" {
			t.Errorf("setting %s has no help text", s.Key)
		}
	}
}
