package config

import (
	"flag"
	"io"
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
	// Each bad file must fail with exactly this message: the file and
	// line, the setting, the fix, and a "did you mean" for near misses.
	// F stands for the file's path.
	want := map[string]string{
		"unknown-key.bad.yaml":       "F:2: unknown setting kafka.brokerz; did you mean kafka.brokers?",
		"typo-key.bad.yaml":          "F:2: unknown setting kafka.broker; did you mean kafka.brokers?",
		"wrong-section.bad.yaml":     "F:2: unknown setting brokers; did you mean kafka.brokers?",
		"bad-broker.bad.yaml":        "invalid configuration:\n--kafka-brokers: \"kafka-1\" is not host:port with a port from 1 to 65535 (e.g. kafka-1:9092) (F:2 kafka.brokers)",
		"same-topic.bad.yaml":        "invalid configuration:\n--topics-triggers: topic \"orders\" is also --topics-orders; every topic must be distinct (F:2 topics.triggers)",
		"bad-format.bad.yaml":        "invalid configuration:\n--trigger-format: \"protobuf\"; use avro or json (F:1 trigger_format)",
		"enum-typo.bad.yaml":         "invalid configuration:\n--trigger-format: \"jsn\" is not one of avro or json; did you mean json? (F:1 trigger_format)",
		"level-typo.bad.yaml":        "invalid configuration:\n--log-level: \"warning\" is not one of debug, info, warn or error; did you mean warn? (F:1 log_level)",
		"bad-dsn.bad.yaml":           "invalid configuration:\n--clickhouse-dsn: \"http://127.0.0.1:8123\" is not a native-protocol DSN, e.g. clickhouse://default:@127.0.0.1:9000/default (F:2 clickhouse.dsn)",
		"bad-duration.bad.yaml":      "F:2: clickhouse.flush_interval: \"soon\" is not a duration; write one with a unit, such as 500ms, 60s, 5m or 1h",
		"bare-duration.bad.yaml":     "F:1: commit_interval: \"60\" has no unit; durations take one: write 60s (or 60ms, 60m)",
		"line-number.bad.yaml":       "F:7: kafka.transaction_timeout: \"soonish\" is not a duration; write one with a unit, such as 500ms, 60s, 5m or 1h",
		"list-for-value.bad.yaml":    "F:2: kafka.group takes a single value, not a list",
		"duplicate-key.bad.yaml":     "F:3: clickhouse.batch_rows is set twice (also on line 2)",
		"syntax.bad.yaml":            "F:2: did not find expected ',' or ']' (in the list or mapping that starts on this line)",
		"tab.bad.yaml":               "F:2: found character that cannot start any token (YAML indents with spaces, not tabs)",
		"sasl-no-user.bad.yaml":      "invalid configuration:\n--kafka-sasl-username: SASL PLAIN needs a user name",
		"zero-batch.bad.yaml":        "invalid configuration:\n--clickhouse-batch-rows: 0; must be at least 1 (100000 is a good size) (F:2 clickhouse.batch_rows)",
		"negative-liveness.bad.yaml": "invalid configuration:\n--kafka-liveness-timeout: -1m0s is negative; use 0 for twice the session timeout (F:2 kafka.liveness_timeout)",
		"attempt-outlasts.bad.yaml":  "invalid configuration:\n--clickhouse-attempt-timeout: 15s outlasts the ClickHouse flush deadline, half of --kafka-transaction-timeout (10s): not one insert could finish before the open transaction must abort; lower it or raise the transaction timeout (F:4 clickhouse.attempt_timeout)",
		"gc-off-unbounded.bad.yaml":  "invalid configuration:\n--runtime-gogc: -1 turns the collector off, and with runtime-memory-limit-ratio 0 nothing would ever collect; set the ratio (e.g. 0.9) or a positive GOGC (F:2 runtime.gogc)",
		"memory-ratio.bad.yaml":      "invalid configuration:\n--runtime-memory-limit-ratio: 90; use a fraction of the container's memory limit above 0 and at most 1 (e.g. 0.9), or 0 to leave the limit alone (F:2 runtime.memory_limit_ratio)",
		"interval-outlasts.bad.yaml": "invalid configuration:\n--commit-interval: 30s outlasts half of --kafka-transaction-timeout (20s): a transaction takes input for up to the interval and then waits up to half the timeout for the previous one's ClickHouse flush, and the broker aborts a transaction that outlives the timeout; lower it or raise the transaction timeout (F:3 commit_interval)",
		"retry-outlasts.bad.yaml":    "invalid configuration:\n--registry-retry: 30s outlasts --kafka-transaction-timeout (20s): a lookup retried inside a transaction would outlive it and fence the instance; lower it below the transaction timeout (F:4 registry.retry)",
		"second-document.bad.yaml":   "F:4: a second YAML document (after ---); winback reads one: merge them into one",
		"empty-value.bad.yaml":       "F:2: kafka.brokers has no value; give one, or remove the key to keep the default (127.0.0.1:9092)\nF:4: clickhouse.batch_rows has no value; give one, or remove the key to keep the default (100000)",
		"tls-not-enabled.bad.yaml":   "invalid configuration:\n--kafka-tls-enabled: false (plaintext), but TLS settings are given (CA, client certificate or insecure-skip-verify); enable TLS, or remove them",
		"auth-half.bad.yaml":         "invalid configuration:\n--kafka-sasl-mechanism: empty (no SASL), but a SASL user name or password is set; name the mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), or remove them\n--registry-username: empty, but a registry password is set; basic auth needs both, or neither",
		"port-range.bad.yaml":        "invalid configuration:\n--kafka-brokers: \"kafka-1:99999\" is not host:port with a port from 1 to 65535 (e.g. kafka-1:9092) (F:2 kafka.brokers)\n--http-addr: \":http\" is not host:port with a port from 0 to 65535 (e.g. :8080) (F:3 http_addr)",
		"dsn-no-port.bad.yaml":       "invalid configuration:\n--clickhouse-dsn: \"clickhouse://ch-1/default\": give each host a port from 1 to 65535; the native protocol listens on 9000 usually (clickhouse://host:9000/db) (F:2 clickhouse.dsn)",
		"lapse-line.bad.yaml":        "invalid configuration:\n--lapse-purchase-lapse-factor: is 50, must be between 1.1 and 20: how many usual intervals of silence make a lapse, e.g. 2 (F:3 lapse.purchase_lapse.factor)\n--lapse-actions: PURCHASE_LAPSE: is \"NOPE\", must be one of [WINBACK_OFFER SERVICE_RECOVERY REENGAGEMENT_CAMPAIGN CHANNEL_SWITCH LOYALTY_REWARD] (F:4 lapse.actions)",
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
			w, ok := want[filepath.Base(f)]
			if !ok {
				t.Fatalf("no expectation for %s", f)
			}
			if w = strings.ReplaceAll(w, "F:", f+":"); err.Error() != w {
				t.Fatalf("error\n%s\nwant\n%s", err, w)
			}
		})
	}
}

func TestFlagAndEnvErrors(t *testing.T) {
	f := func(args []string, env map[string]string, want string) {
		t.Helper()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg := Default()
		l := Bind(fs, &cfg)
		err := fs.Parse(args)
		if err == nil {
			err = l.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v %v: error %v, want it to contain %q", args, env, err, want)
		}
	}
	f([]string{"--commit-interval", "60"}, nil, `"60" has no unit; durations take one: write 60s`)
	f(nil, map[string]string{"WINBACK_SHUTDOWN_TIMEOUT": "5"}, `env WINBACK_SHUTDOWN_TIMEOUT: "5" has no unit`)
	f([]string{"--log-format", "txt"}, nil, `--log-format: "txt" is not one of auto, text or json; did you mean text?`)
	f([]string{"--kafka-sasl-mechanism", "SCRAM-SHA256", "--kafka-sasl-username", "u"}, nil, "did you mean SCRAM-SHA-256?")
	f([]string{"--startup-timeout", "0s"}, nil, "--startup-timeout: must be positive")
}

func TestSuggest(t *testing.T) {
	f := func(got string, options []string, want string) {
		t.Helper()
		if s := Suggest(got, options); s != want {
			t.Errorf("Suggest(%q, %v) = %q, want %q", got, options, s, want)
		}
	}
	keys := []string{"brokers", "group", "transactional_id", "session_timeout"}
	f("broker", keys, "brokers")
	f("brokerz", keys, "brokers")
	f("BROKERS", keys, "brokers")
	f("grup", keys, "group")
	f("sesion_timout", keys, "session_timeout")
	f("zookeeper", keys, "")
	f("x", keys, "")
	f("jsn", []string{"avro", "json"}, "json")
	f("protobuf", []string{"avro", "json"}, "")
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

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"HOME=/root", "WINBACK_KAFKA_BROKERS=k:9092", "WINBACK_KAFKA_BROKER=k:9092", "WINBACK_CONFIG=x.yaml",
		"WINBACK_TESTENV_HELPER_CH_DIR=/tmp", "WINBACK_FROBNICATE=1"})
	want := []string{
		"WINBACK_KAFKA_BROKER is not a setting and is ignored; did you mean WINBACK_KAFKA_BROKERS?",
		"WINBACK_FROBNICATE is not a setting and is ignored",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("UnknownEnv:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestClickHouseCluster: cluster mode is set by flag or env, and a bad
// cluster name, or replicated tables without a cluster, fail naming the
// flag.
func TestClickHouseCluster(t *testing.T) {
	cfg, err := load(t, []string{"--clickhouse-cluster", "winback_prod"}, map[string]string{"WINBACK_CLICKHOUSE_REPLICATED": "true"})
	if err != nil || cfg.ClickHouse.Cluster != "winback_prod" || !cfg.ClickHouse.Replicated {
		t.Fatalf("cluster %q replicated %v, %v; want winback_prod, true", cfg.ClickHouse.Cluster, cfg.ClickHouse.Replicated, err)
	}
	if d := Default(); d.ClickHouse.Cluster != "" || d.ClickHouse.Replicated {
		t.Fatal("the default is not one node")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--clickhouse-cluster", "prod-eu"}, "--clickhouse-cluster"},
		{[]string{"--clickhouse-replicated"}, "--clickhouse-replicated"},
	} {
		if _, err := load(t, tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}

// TestStandbyReplicas: kafka.standby_replicas is set by flag, env or YAML
// (default 0), and a negative or outsized count, or standbys with the eager
// balancer (which assigns none), fail naming the flag.
func TestStandbyReplicas(t *testing.T) {
	if d := Default(); d.Kafka.StandbyReplicas != 0 {
		t.Fatalf("default %d standby replicas, want 0", d.Kafka.StandbyReplicas)
	}
	cfg, err := load(t, []string{"--kafka-standby-replicas", "2"}, nil)
	if err != nil || cfg.Kafka.StandbyReplicas != 2 {
		t.Fatalf("flag: %d, %v; want 2", cfg.Kafka.StandbyReplicas, err)
	}
	cfg, err = load(t, nil, map[string]string{"WINBACK_KAFKA_STANDBY_REPLICAS": "1"})
	if err != nil || cfg.Kafka.StandbyReplicas != 1 {
		t.Fatalf("env: %d, %v; want 1", cfg.Kafka.StandbyReplicas, err)
	}
	for _, args := range [][]string{
		{"--kafka-standby-replicas", "-1"},
		{"--kafka-standby-replicas", "9"},
		{"--kafka-standby-replicas", "1", "--kafka-rebalance", "eager"},
	} {
		if _, err := load(t, args, nil); err == nil || !strings.Contains(err.Error(), "--kafka-standby-replicas") {
			t.Errorf("%v: got %v, want an error naming --kafka-standby-replicas", args, err)
		}
	}
}

// TestCompression: kafka.compression is snappy unless set, takes every
// Kafka codec by flag or env, and a typo fails naming the flag with the
// codec meant.
func TestCompression(t *testing.T) {
	if d := Default(); d.Kafka.Compression != "snappy" {
		t.Fatalf("default compression %q, want snappy", d.Kafka.Compression)
	}
	for _, c := range Compressions {
		cfg, err := load(t, []string{"--kafka-compression", c}, nil)
		if err != nil || cfg.Kafka.Compression != c {
			t.Errorf("flag %s: %q, %v", c, cfg.Kafka.Compression, err)
		}
	}
	cfg, err := load(t, nil, map[string]string{"WINBACK_KAFKA_COMPRESSION": "gzip"})
	if err != nil || cfg.Kafka.Compression != "gzip" {
		t.Fatalf("env: %q, %v; want gzip", cfg.Kafka.Compression, err)
	}
	_, err = load(t, []string{"--kafka-compression", "gzipp"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--kafka-compression") || !strings.Contains(err.Error(), "did you mean gzip") {
		t.Errorf("a typo gives %v, want an error naming --kafka-compression and suggesting gzip", err)
	}
}

// TestWarnings: a TTL that evicts customers before their lapse can come
// due is allowed (a retention policy may ask for it) but warned about.
func TestWarnings(t *testing.T) {
	cfg := Default()
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("the defaults warn: %q", w)
	}
	cfg.State.TTLDays = 365 // = lapse.purchase_lapse.max_gap_days
	if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "state.ttl_days (365) is not longer than lapse.purchase_lapse.max_gap_days (365)") {
		t.Errorf("TTL 365 days: %q", w)
	}
	cfg.State.TTLDays = 0 // forever
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("TTL 0 warns: %q", w)
	}
}
