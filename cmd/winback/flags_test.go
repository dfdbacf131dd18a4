package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestUsageErrorsFitOnAScreen: a mistake in a flag, a value or a config
// file gets exit code 2, the error with a "did you mean" for near misses,
// and a pointer to -h, in a few lines (not the 170-line flag list).
func TestUsageErrorsFitOnAScreen(t *testing.T) {
	dir := t.TempDir()
	yamlFile := filepath.Join(dir, "winback.yaml")
	if err := os.WriteFile(yamlFile, []byte("kafka:\n  group: winback\n  broker: kafka-1:9092\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := func(args []string, want ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2; stderr:\n%s", args, code, stderr.String())
		}
		out := stderr.String()
		if n := strings.Count(out, "\n"); n > 4 {
			t.Errorf("%v: %d lines of stderr, want at most 4:\n%s", args, n, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: stderr does not contain %q:\n%s", args, w, out)
			}
		}
	}
	help := func(cmd string) string { return "Run 'winback " + cmd + " -h' for its flags" }
	f([]string{"run", "--kafka-broker", "x:9092"}, "winback run: unknown flag --kafka-broker; did you mean --kafka-brokers?", help("run"))
	f([]string{"gen", "--custmers", "5"}, "winback gen: unknown flag --custmers; did you mean --customers?", help("gen"))
	f([]string{"run", "--frobnicate"}, "winback run: unknown flag --frobnicate\n", help("run"))
	f([]string{"run", "--commit-interval", "60"}, `winback run: --commit-interval: "60" has no unit; durations take one: write 60s`, help("run"))
	f([]string{"run", "--trigger-format", "jsn"}, `--trigger-format: "jsn" is not one of avro or json; did you mean json?`)
	f([]string{"run", "--config", yamlFile}, yamlFile+":3: unknown setting kafka.broker; did you mean kafka.brokers?", help("run"))
	f([]string{"run", "--http-addr"}, "winback run: --http-addr needs a value")
	f([]string{"rn"}, `winback: unknown command "rn"; did you mean run?`, "Run 'winback --help'")
	f([]string{"gen", "--encoding", "jsn"}, `--encoding: "jsn" is not one of avro, json or mixed; did you mean json?`)
	f([]string{"backtest", "--format", "jsno"}, `--format: "jsno" is not one of text or json; did you mean json?`)
	// Arguments the flag package leaves over: a boolean's separate value
	// (which stops the parse, so the flags after it would go unread), a
	// word where a command takes none, a flag after erase's first id.
	f([]string{"run", "--http-pprof", "false", "--kafka-brokers", "x:1"}, `winback run: --http-pprof takes no separate value: write --http-pprof=false (the flags after "false" were not read)`)
	f([]string{"erase", "--kafka-tls-insecure-skip-verify", "false", "c-1"}, "--kafka-tls-insecure-skip-verify takes no separate value: write --kafka-tls-insecure-skip-verify=false")
	f([]string{"erase", "c-1", "--topics-erasures", "mine"}, `argument 2: "--topics-erasures" after the first customer id; give the flags before the ids`)
	f([]string{"run", "extra"}, `winback run: unexpected argument "extra"; winback run takes flags only`)
	f([]string{"migrate", "extra"}, `unexpected argument "extra"; winback migrate takes flags only`)
	f([]string{"config", "--effective", "extra"}, `unexpected argument "extra"; winback config takes flags only`)
	f([]string{"dev", "extra"}, `unexpected argument "extra"; winback dev takes flags only`)
	f([]string{"run", "--kafka-tls-enabled=yes"}, `winback run: --kafka-tls-enabled: "yes" is not true or false`)
	// A DSN the driver cannot parse is a mistake, not an outage: exit 2
	// at once, not 1 after the start-up timeout.
	f([]string{"migrate", "--clickhouse-dsn", "clickhouse://127.0.0.1:1/default?secure=yes", "--startup-timeout", "1h"}, `winback migrate: --clickhouse-dsn: clickhouse: DSN: `, `parsing "yes"`)
	// A missing token file stops run before it waits for Kafka (an hour
	// here) or creates anything.
	f([]string{"run", "--http-token-file", filepath.Join(dir, "missing"), "--kafka-brokers", "127.0.0.1:1", "--startup-timeout", "1h"}, "winback run: --http-token-file: open ")
}

// TestHelpListsOwnFlagsFirst: gen -h shows gen's five flags before the
// shared settings.
func TestHelpListsOwnFlagsFirst(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"gen", "-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("gen -h: exit %d", code)
	}
	out := stderr.String()
	own := strings.Index(out, "Flags of gen:")
	shared := strings.Index(out, "Settings (")
	if own < 0 || shared < own {
		t.Fatalf("gen -h does not list its own flags before the settings:\n%s", out)
	}
	for _, f := range []string{"-customers", "-days", "-seed", "-encoding", "-end", "-out"} {
		if i := strings.Index(out, "\n  "+f+" "); i < own || i > shared {
			t.Errorf("gen -h: %s is not among gen's own flags", f)
		}
	}
	if i := strings.Index(out, "-kafka-brokers"); i < shared {
		t.Errorf("gen -h: -kafka-brokers is listed before the shared settings")
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--version: exit %d: %s", code, stderr.String())
	}
	if !regexp.MustCompile(`^winback \S+, commit \S+( of \S+)?, go1\.\d+`).MatchString(stdout.String()) {
		t.Errorf("--version printed %q", stdout.String())
	}
}

// TestUnknownEnvWarns: a misspelt WINBACK_* variable is named, with the
// one meant, instead of being silently ignored.
func TestUnknownEnvWarns(t *testing.T) {
	t.Setenv("WINBACK_KAFKA_BROKER", "k:9092")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"config", "--effective"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := "winback config: warning: WINBACK_KAFKA_BROKER is not a setting and is ignored; did you mean WINBACK_KAFKA_BROKERS?\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}
