package config

import (
	"flag"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	f("clickhouse://127.0.0.1:9000/default", "clickhouse://127.0.0.1:9000/default")
	f("clickhouse://winback:hunter2@ch:9000/default", "clickhouse://winback:***@ch:9000/default")
	f("clickhouse://winback:@ch:9000/default", "clickhouse://winback:***@ch:9000/default")
	f("clickhouse://winback@ch:9000/default", "clickhouse://winback@ch:9000/default")
	f("clickhouse://u:p@ss/w#rd@ch:9000/db", "clickhouse://u:***@ch:9000/db")
	f("clickhouse://ch:9000/db?username=u&password=hunter2&secure=true", "clickhouse://ch:9000/db?username=u&password=***&secure=true")
	f("clickhouse://ch:9000/db?pass%77ord=hunter2", "clickhouse://ch:9000/db?pass%77ord=***")
	f("clickhouse://ch:9000/db?http_proxy=http://u:pw@proxy:3128", "clickhouse://ch:9000/db?http_proxy=***")
	f("https://reg-user:reg-pass@registry:8081", "https://reg-user:***@registry:8081")
	f("not a url: user:pw@host", "not a url:***@host") // masks too much rather than too little
	f("", "")
}

func TestRedactArgs(t *testing.T) {
	args := []string{"winback", "run",
		"--clickhouse-dsn", "clickhouse://winback:dsn-secret@ch:9000/default",
		"--kafka-sasl-password=sasl-secret",
		"-registry-password", "registry-secret",
		"--registry-url=https://u:url-secret@registry:8081",
		"--http-token-file", "/etc/winback/token",
		"--kafka-brokers", "k:9092",
	}
	got := RedactArgs(args)
	line := strings.Join(got, " ")
	for _, secret := range []string{"dsn-secret", "sasl-secret", "registry-secret", "url-secret"} {
		if strings.Contains(line, secret) {
			t.Errorf("%s in %q", secret, line)
		}
	}
	for _, kept := range []string{"winback run", "--clickhouse-dsn clickhouse://winback:***@ch:9000/default", "--kafka-sasl-password=***",
		"-registry-password ***", "--http-token-file /etc/winback/token", "--kafka-brokers k:9092"} {
		if !strings.Contains(line, kept) {
			t.Errorf("%q not in %q", kept, line)
		}
	}
	if args[3] != "clickhouse://winback:dsn-secret@ch:9000/default" {
		t.Error("RedactArgs changed its input")
	}
}

// TestConfigErrorsHideSecrets checks that an invalid DSN or registry URL is
// named in the error without its password.
func TestConfigErrorsHideSecrets(t *testing.T) {
	for _, args := range [][]string{
		{"--clickhouse-dsn", "http://winback:dsn-secret@ch:8123/default"},
		{"--clickhouse-dsn", "clickhouse://winback:dsn-secret@/default"},
		{"--registry-url", "ftp://u:url-secret@registry"},
	} {
		cfg := Default()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		l := Bind(fs, &cfg)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		err := l.Load(func(string) (string, bool) { return "", false })
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		if !strings.Contains(err.Error(), "--"+strings.TrimPrefix(args[0], "--")) || !strings.Contains(err.Error(), Redacted) {
			t.Errorf("%v: error %q does not name the setting and its redacted value", args, err)
		}
		for _, s := range cfg.Secrets() {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%v: error shows the secret %q: %v", args, s, err)
			}
		}
		if len(cfg.Secrets()) == 0 {
			t.Errorf("%v: Secrets() found none", args)
		}
	}
}
