package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/winback/winback/config"
	"github.com/winback/winback/testenv"
)

// TestConfigEffective: config --effective prints the merged settings as
// YAML that --config reads back to the same settings, secrets redacted.
func TestConfigEffective(t *testing.T) {
	t.Setenv("WINBACK_KAFKA_SASL_PASSWORD", "sasl-secret")
	t.Setenv("WINBACK_REGISTRY_PASSWORD", "reg-secret")
	t.Setenv("WINBACK_CLICKHOUSE_BATCH_ROWS", "777")
	args := []string{"config", "--effective", "--kafka-brokers", "k1:9092,k2:9092", "--kafka-sasl-mechanism", "PLAIN",
		"--kafka-sasl-username", "wb", "--registry-username", "r", "--registry-url", "https://ru:url-secret@reg:8081",
		"--clickhouse-dsn", "clickhouse://ch:dsn-secret@ch-1:9000/default", "--commit-interval", "2s"}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, secret := range []string{"sasl-secret", "reg-secret", "url-secret", "dsn-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("config --effective shows %s:\n%s", secret, out)
		}
	}
	for _, want := range []string{"  brokers:\n    - k1:9092\n    - k2:9092\n", "batch_rows: 777\n", "commit_interval: 2s\n",
		"dsn: clickhouse://ch:***@ch-1:9000/default\n", "password: '***'\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("config --effective lacks %q:\n%s", want, out)
		}
	}
	// Read back, the placeholders are refused, each named (they would be
	// sent as passwords); with the secrets given by their variables, which
	// override the file, it gives the same settings.
	path := filepath.Join(t.TempDir(), "effective.yaml")
	if err := os.WriteFile(path, stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"WINBACK_KAFKA_SASL_PASSWORD", "WINBACK_REGISTRY_PASSWORD", "WINBACK_CLICKHOUSE_BATCH_ROWS"} {
		os.Unsetenv(k)
	}
	back := config.Default()
	fs := newFlagSet("config", "", &stderr)
	err := loadConfig(fs, []string{"--config", path}, &back)
	for _, flag := range []string{"--kafka-sasl-password", "--registry-password", "--clickhouse-dsn", "--registry-url"} {
		if err == nil || !strings.Contains(err.Error(), flag+": its password is \"***\", the placeholder") {
			t.Errorf("--config of the effective settings with their placeholders: %v; want %s refused", err, flag)
		}
	}
	t.Setenv("WINBACK_KAFKA_SASL_PASSWORD", "sasl-secret")
	t.Setenv("WINBACK_REGISTRY_PASSWORD", "reg-secret")
	t.Setenv("WINBACK_REGISTRY_URL", "https://ru:url-secret@reg:8081")
	t.Setenv("WINBACK_CLICKHOUSE_DSN", "clickhouse://ch:dsn-secret@ch-1:9000/default")
	back = config.Default()
	fs = newFlagSet("config", "", &stderr)
	if err := loadConfig(fs, []string{"--config", path}, &back); err != nil {
		t.Fatalf("--config of the effective settings, secrets in the environment: %v", err)
	}
	want := config.Default()
	fs = newFlagSet("config", "", &stderr)
	t.Setenv("WINBACK_CLICKHOUSE_BATCH_ROWS", "777")
	if err := loadConfig(fs, args[2:], &want); err != nil {
		t.Fatal(err)
	}
	// Compared as YAML: an empty map and a nil one are the same setting.
	gb, _ := yaml.Marshal(back)
	wb, _ := yaml.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("read back:\n%s\nwant:\n%s", gb, wb)
	}
	if back.ClickHouse.BatchRows != 777 || back.CommitInterval != 2*time.Second || len(back.Kafka.Brokers) != 2 {
		t.Errorf("read back lost settings: %+v", back)
	}
}

// TestProgressLineSeparatesRecovered: RECOVERED triggers are counted
// apart from the WINBACK ones, which are listed by reason.
func TestProgressLineSeparatesRecovered(t *testing.T) {
	reg := prometheus.NewRegistry()
	trig := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "winback_triggers_total"}, []string{"kind", "reason", "action", "tier"})
	reg.MustRegister(trig)
	p := newProgress(reg)
	if line := p.line(); !strings.Contains(line, "| WINBACK 0 | RECOVERED 0 |") {
		t.Errorf("no triggers yet: %s", line)
	}
	trig.WithLabelValues("WINBACK", "PURCHASE_LAPSE", "WINBACK_OFFER", "HIGH").Add(3)
	trig.WithLabelValues("WINBACK", "PURCHASE_LAPSE", "WINBACK_OFFER", "LOW").Add(2)
	trig.WithLabelValues("WINBACK", "SUPPORT_FRICTION", "SERVICE_RECOVERY", "LOW").Add(1)
	trig.WithLabelValues("RECOVERED", "PURCHASE_LAPSE", "LOYALTY_REWARD", "LOW").Add(4)
	if line := p.line(); !strings.Contains(line, "| WINBACK PURCHASE_LAPSE=5 SUPPORT_FRICTION=1 | RECOVERED 4 |") {
		t.Errorf("progress line: %s", line)
	}
}

// TestLogFormatAuto: auto is JSON when stderr is not a terminal, and
// --log-format wins.
func TestLogFormatAuto(t *testing.T) {
	var buf bytes.Buffer
	f := func(format, want string) {
		t.Helper()
		if got := logFormat(format, &buf); got != want {
			t.Errorf("logFormat(%q, buffer) = %q, want %q", format, got, want)
		}
	}
	f("auto", "json")
	f("text", "text")
	f("json", "json")
	// A pipe is no terminal either.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if logFormat("auto", w) != "json" {
		t.Error("auto on a pipe is not json")
	}
	// /dev/tty is not always there (no controlling terminal in CI), but
	// /dev/null is a character device and stands in for one.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if logFormat("auto", null) != "text" {
		t.Error("auto on a character device is not text")
	}
	var out bytes.Buffer
	cfg := config.Default()
	cfg.LogFormat = "text"
	newLogger(&cfg, &out).Info("x", "took", 1500*time.Millisecond)
	if !strings.Contains(out.String(), " took=1.5s\n") {
		t.Errorf("text log does not show a human duration: %s", out.String())
	}
}

// TestDevStoppedSaysWhatStillWorks: after a stop, dev no longer prints
// commands for the servers that stopped with it.
func TestDevStoppedSaysWhatStillWorks(t *testing.T) {
	cfg := config.Default()
	var own, local bytes.Buffer
	cfg.ClickHouse.DSN = "clickhouse://default:@ch-1:9440/default"
	printStopped(&own, &cfg, "", nil)
	if !strings.Contains(own.String(), "clickhouse-client --port 9440 --host ch-1 --query") || strings.Contains(own.String(), "kcat") {
		t.Errorf("with an outside ClickHouse:\n%s", own.String())
	}
	printStopped(&local, &cfg, "/data/wb", &testenv.ClickHouse{})
	out := local.String()
	if strings.Contains(out, "clickhouse-client") || strings.Contains(out, "kcat") || !strings.Contains(out, "no longer work") ||
		!strings.Contains(out, "start again with the same --data-dir") {
		t.Errorf("with the embedded ClickHouse:\n%s", out)
	}
}
