package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winback/winback/pipeline/lapse"
)

// Config is every setting of winback run and winback dev.
type Config struct {
	Kafka      Kafka        `yaml:"kafka"`
	Registry   Registry     `yaml:"registry"`
	ClickHouse ClickHouse   `yaml:"clickhouse"`
	Topics     Topics       `yaml:"topics"`
	Lapse      lapse.Config `yaml:"lapse"`
	Decode     Decode       `yaml:"decode"`
	State      State        `yaml:"state"`
	Runtime    Runtime      `yaml:"runtime"`

	TriggerFormat   string        `yaml:"trigger_format" help:"encoding of the trigger topic: avro (Confluent framed, schema registered) or json"`
	HTTPAddr        string        `yaml:"http_addr" help:"address of the HTTP server for /metrics, /healthz, /readyz and /v1/customers/{id}"`
	HTTPTokenFile   string        `yaml:"http_token_file" help:"file holding a bearer token; when set, /v1/customers/{id} and /debug/pprof/ require the header Authorization: Bearer <token> (401 otherwise)"`
	HTTPPprof       bool          `yaml:"http_pprof" help:"serve Go's profiler under /debug/pprof/ on http_addr (behind the token when http_token_file is set)"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" help:"how long a graceful shutdown may take before winback exits anyway"`
	StartupTimeout  time.Duration `yaml:"startup_timeout" help:"how long winback waits at start for Kafka, the schema registry and ClickHouse before it exits with the setting to fix (later outages are retried)"`
	CommitInterval  time.Duration `yaml:"commit_interval" help:"longest time between transaction commits while input flows; at most half of kafka.transaction_timeout"`
	MaxPollRecords  int           `yaml:"max_poll_records" help:"records processed per transaction at most"`
	LogFormat       string        `yaml:"log_format" help:"log format: text, json, or auto (text when stderr is a terminal, else json)"`
	LogLevel        string        `yaml:"log_level" help:"log level: debug, info, warn or error"`
	MaxValueBytes   int           `yaml:"max_value_bytes" help:"input records larger than this go to the dead-letter topic"`
	// InputPartitioning is auto or strict.
	InputPartitioning string `yaml:"input_partitioning" help:"auto: input records whose key is not the customer_id or that another partitioner placed (librdkafka's CRC32, null keys) are routed to their customer's partition through the repartition topic; strict: they go to the dead-letter topic (key.partition_mismatch)"`
	DLQMaxValueBytes  int    `yaml:"dlq_max_value_bytes" help:"a dead-lettered value longer than this is cut (headers winback.truncated and winback.source.size say so); the key (over 4 KiB) and source headers (over 16 KiB) are cut too; at most 950 KiB, and keep it 24 KiB below the dead-letter topic's max.message.bytes"`
}

// Kafka is how winback reaches the brokers.
type Kafka struct {
	Brokers         []string      `yaml:"brokers" help:"seed brokers, host:port, comma-separated"`
	Group           string        `yaml:"group" help:"consumer group of the winback instances"`
	TransactionalID string        `yaml:"transactional_id" help:"transactional id prefix; each instance appends its own instance id"`
	InstanceID      string        `yaml:"instance_id" help:"id of this instance, unique in the group and stable across its restarts, so that a restart fences its own unfinished transaction and takes its place in the consumer group as a static member (default: hostname)"`
	SessionTimeout  time.Duration `yaml:"session_timeout" help:"group session timeout; the rebalance timeout is half of it and the heartbeat interval a tenth, so that a rebalance waiting for a crashed member ends before the live members' sessions do"`
	LivenessTimeout time.Duration `yaml:"liveness_timeout" help:"an instance that holds no partition this long, while the group commits nothing and the inputs have lag, logs an ERROR with the group state, fails /readyz and sets winback_group_stalled (0: twice the session timeout)"`
	TxnTimeout      time.Duration `yaml:"transaction_timeout" help:"how long the broker keeps a transaction open; a crashed instance's open batch is aborted after it (at once when it restarts with the same instance id)"`
	Rebalance       string        `yaml:"rebalance" help:"how the group moves tasks: cooperative (only the tasks that move are revoked and restored; the other instances go on committing), eager (every rebalance revokes every task: the range balancer of winback before 2026-12), or migrate (both offered, for the rolling restart that takes a group from eager to cooperative: docs/production.md)"`
	Compression     string        `yaml:"compression" help:"codec of the record batches winback writes (triggers, dead letters, changelog, repartition and progress records): snappy, lz4, zstd, gzip or none; every Kafka client reads gzip and none, but some read the others only with a plug-in (KafkaJS reads none of them without one: docs/contract.md)"`
	StandbyReplicas int           `yaml:"standby_replicas" help:"warm copies of each task kept by other instances, which tail its changelog partition, so that the instance that takes a task over from a crashed one catches up the last records instead of restoring the whole changelog (Kafka Streams' num.standby.replicas); each copy costs the memory of the task's state on the instance that keeps it (docs/production.md, Standby replicas); 0: none"`
	SASL            SASL          `yaml:"sasl"`
	TLS             TLS           `yaml:"tls"`
}

// SASL authenticates to the brokers.
type SASL struct {
	Mechanism string `yaml:"mechanism" help:"SASL mechanism: empty (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"`
	Username  string `yaml:"username" help:"SASL user name"`
	Password  string `yaml:"password" help:"SASL password (prefer the env variable)"`
}

// TLS secures the connection to the brokers.
type TLS struct {
	Enabled            bool   `yaml:"enabled" help:"connect to the brokers with TLS"`
	CAFile             string `yaml:"ca_file" help:"PEM file of the CA that signed the brokers' certificates (default: system roots)"`
	CertFile           string `yaml:"cert_file" help:"PEM client certificate for mutual TLS"`
	KeyFile            string `yaml:"key_file" help:"PEM client key for mutual TLS"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" help:"do not verify the brokers' certificates (testing only)"`
}

// Registry is the Confluent-compatible schema registry.
type Registry struct {
	URL      string        `yaml:"url" help:"schema registry URL (Confluent REST API)"`
	Username string        `yaml:"username" help:"basic-auth user for the registry"`
	Password string        `yaml:"password" help:"basic-auth password for the registry"`
	Retry    time.Duration `yaml:"retry" help:"how long a schema lookup retries an unreachable registry; then the batch aborts and is replayed with backoff (never dead-lettered)"`
}

// ClickHouse is where the aggregates go.
type ClickHouse struct {
	DSN           string        `yaml:"dsn" help:"ClickHouse DSN, native protocol: clickhouse://user:pass@host:9000/db"`
	Database      string        `yaml:"database" help:"database of winback's tables and views"`
	BatchRows     int           `yaml:"batch_rows" help:"rows per insert batch at most; a transaction ends early when its rows (those the tasks hold for the commit included) reach it"`
	FlushInterval time.Duration `yaml:"flush_interval" help:"deprecated and ignored: rows are written at every commit, so commit_interval bounds how long they wait"`
	ActiveDays    int           `yaml:"active_days" help:"a customer is active in the retention views if they ordered within this many days"`
	// A committed transaction's rows must be in ClickHouse within half
	// of kafka.transaction_timeout (the flush deadline), else the next
	// transaction aborts and winback waits for ClickHouse with no
	// transaction open.
	AttemptTimeout time.Duration `yaml:"attempt_timeout" help:"longest time one insert may take before it is retried; at most half of kafka.transaction_timeout, the deadline of a whole flush (retries included)"`
	// Cluster mode: README "ClickHouse cluster mode".
	Cluster    string `yaml:"cluster" help:"name of a cluster in the servers' remote_servers: the tables become local tables on every node under Distributed tables sharded by cityHash64(customer_id), the DDL runs on every node (ON CLUSTER where the servers have ZooKeeper); empty: one node"`
	Replicated bool   `yaml:"replicated" help:"cluster mode with Replicated*MergeTree local tables ({shard}/{replica} macros; needs ZooKeeper) and, on ClickHouse 20.3+, inserts with insert_quorum"`
	// Table TTLs: ClickHouse 19.6+ only (migration 091, docs/scaling.md).
	TTLDailyDays      int `yaml:"ttl_daily_days" help:"on ClickHouse 19.6+, customer_daily keeps this many days of rows (a TTL on day; the retention views still see older days, from customer_history_state); 0 keeps them forever; ignored with a warning on older servers"`
	TTLTriggerDays    int `yaml:"ttl_trigger_days" help:"on ClickHouse 19.6+, winback_triggers keeps the triggers of this many days (a TTL on as_of); 0 keeps them forever; ignored with a warning on older servers"`
	TTLDeadLetterDays int `yaml:"ttl_dead_letter_days" help:"on ClickHouse 19.6+, dlq_records keeps this many days of dead letters (a TTL on when they were dead-lettered); 0 keeps them forever; ignored with a warning on older servers"`
}

// Decode bounds what input records winback accepts.
type Decode struct {
	MaxFutureSkew time.Duration `yaml:"max_future_skew" help:"an event_time further than this after the wall clock goes to the dead-letter topic (time.in_future), so that one mis-dated event cannot fire timers early"`
}

// State bounds what winback keeps per customer.
type State struct {
	CacheMaxBytes int `yaml:"cache_max_bytes" help:"a transaction ends early when what it holds for the commit reaches about this many bytes: the changelog snapshots of the customers it changed (one per changed customer per commit, however many events it had) and the ClickHouse rows of the customer-days it closed; with commit_interval, it trades trigger latency for CPU and memory (docs/production.md); 0: no bound"`
	TTLDays       int `yaml:"ttl_days" help:"a customer with no change (an event, or a trigger fired by silence) for this many days of event time is evicted: a changelog tombstone, and its last customer_aggregates row marked evicted; 0 keeps customers forever"`
}

// Runtime tunes the Go runtime of the process, the way Prometheus'
// runtime.gogc and --auto-gomemlimit do.
type Runtime struct {
	GOGC             int     `yaml:"gogc" help:"the garbage collector's GOGC: a collection starts when the heap has grown this many percent since the last one; higher spends less CPU on collection and more memory between collections (docs/production.md has the figures); -1 turns the collector off until the memory limit (needs memory_limit_ratio); the GOGC environment variable, when set, wins"`
	MemoryLimitRatio float64 `yaml:"memory_limit_ratio" help:"sets Go's soft memory limit (GOMEMLIMIT) to this fraction of the container's cgroup memory limit, so that the collector works harder as the process nears the limit instead of being killed for going past it; no cgroup limit: no limit; 0: leave the runtime alone; the GOMEMLIMIT environment variable, when set, wins"`
}

// Topics names the topics winback reads and writes.
type Topics struct {
	Orders     string `yaml:"orders" help:"input topic of orders"`
	Email      string `yaml:"email" help:"input topic of email engagement events"`
	Support    string `yaml:"support" help:"input topic of support ticket events"`
	Triggers   string `yaml:"triggers" help:"output topic of win-back triggers"`
	DLQ        string `yaml:"dlq" help:"dead-letter topic for undecodable or invalid input"`
	State      string `yaml:"state" help:"compacted changelog topic of per-customer state (co-partitioned with the inputs)"`
	Partitions int    `yaml:"partitions" help:"partitions of topics winback creates when they are missing (0: do not create)"`
	// Internal topics, created by winback when missing.
	Repartition string `yaml:"repartition" help:"internal topic for input records whose key or partitioner does not place them in their customer's partition (empty: <kafka.group>-repartition); created when missing, with the inputs' partition count"`
	Progress    string `yaml:"progress" help:"internal compacted topic where each partition publishes its event-time progress, so that quiet partitions follow the pipeline (empty: <kafka.group>-progress); created when missing"`
	Erasures    string `yaml:"erasures" help:"input topic of erasure requests (GDPR, CCPA), keyed by customer_id, co-partitioned with the inputs (winback erase writes it); created when missing, with the inputs' partition count"`
}

// Compressions are the values of kafka.compression: Kafka's codecs.
var Compressions = []string{"snappy", "lz4", "zstd", "gzip", "none"}

// Default returns the defaults; every field the user leaves alone keeps them.
func Default() Config {
	return Config{
		Kafka: Kafka{
			Brokers:         []string{"127.0.0.1:9092"},
			Group:           "winback",
			TransactionalID: "winback",
			SessionTimeout:  45 * time.Second,
			TxnTimeout:      40 * time.Second,
			Rebalance:       "cooperative",
			Compression:     "snappy",
		},
		Registry: Registry{URL: "http://127.0.0.1:8081", Retry: 30 * time.Second},
		ClickHouse: ClickHouse{
			DSN:            "clickhouse://127.0.0.1:9000/default",
			Database:       "winback",
			BatchRows:      100000,
			FlushInterval:  time.Second,
			ActiveDays:     90,
			AttemptTimeout: 10 * time.Second,
		},
		Topics: Topics{
			Orders:   "orders",
			Email:    "email-events",
			Support:  "support-events",
			Triggers: "winback-triggers",
			DLQ:      "winback-dlq",
			State:    "winback-state",
			Erasures: "winback-erasures",
		},
		State:             State{TTLDays: 1095, CacheMaxBytes: 64 << 20},
		Runtime:           Runtime{GOGC: 200, MemoryLimitRatio: 0.9},
		TriggerFormat:     "avro",
		HTTPAddr:          "127.0.0.1:8080",
		ShutdownTimeout:   30 * time.Second,
		StartupTimeout:    30 * time.Second,
		CommitInterval:    time.Second,
		MaxPollRecords:    1000000,
		LogFormat:         "auto",
		InputPartitioning: "auto",
		LogLevel:          "info",
		MaxValueBytes:     1 << 20,
		DLQMaxValueBytes:  900 << 10,
		Lapse:             lapse.DefaultConfig(),
		Decode:            Decode{MaxFutureSkew: 5 * time.Minute},
	}
}

// Validate checks every setting and returns all problems at once, each
// naming the setting (as its flag) and the fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka-brokers", "no brokers; give at least one host:port")
	}
	for _, b := range c.Kafka.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || !validPort(port, 1) {
			bad("kafka-brokers", "%q is not host:port with a port from 1 to 65535 (e.g. kafka-1:9092)", b)
		}
	}
	if c.Kafka.Group == "" {
		bad("kafka-group", "empty; name the consumer group, e.g. winback")
	}
	if c.Kafka.TransactionalID == "" {
		bad("kafka-transactional-id", "empty; exactly-once needs a transactional id prefix, e.g. winback")
	}
	if c.Kafka.SessionTimeout < 6*time.Second {
		bad("kafka-session-timeout", "%s is below the 6s brokers accept by default", c.Kafka.SessionTimeout)
	}
	if c.Kafka.Rebalance != "cooperative" && c.Kafka.Rebalance != "eager" && c.Kafka.Rebalance != "migrate" {
		bad("kafka-rebalance", "%s", oneOf(c.Kafka.Rebalance, "cooperative", "eager", "migrate"))
	}
	if !slices.Contains(Compressions, c.Kafka.Compression) {
		bad("kafka-compression", "%s", oneOf(c.Kafka.Compression, Compressions...))
	}
	if c.Kafka.LivenessTimeout < 0 {
		bad("kafka-liveness-timeout", "%s is negative; use 0 for twice the session timeout", c.Kafka.LivenessTimeout)
	}
	if c.Kafka.StandbyReplicas < 0 || c.Kafka.StandbyReplicas > 8 {
		bad("kafka-standby-replicas", "%d; use 0 (none) to 8: each replica is a copy of every task's state in some instance's memory, and one or two are the usual", c.Kafka.StandbyReplicas)
	} else if c.Kafka.StandbyReplicas > 0 && c.Kafka.Rebalance == "eager" {
		bad("kafka-standby-replicas", "needs --kafka-rebalance cooperative or migrate: the eager range balancer assigns no standbys")
	}
	if c.Kafka.TxnTimeout < time.Second {
		bad("kafka-transaction-timeout", "%s is too short; use at least 1s (40s is the usual)", c.Kafka.TxnTimeout)
	}
	switch strings.ToUpper(c.Kafka.SASL.Mechanism) {
	case "":
		if c.Kafka.SASL.Username != "" || c.Kafka.SASL.Password != "" {
			bad("kafka-sasl-mechanism", "empty (no SASL), but a SASL user name or password is set; name the mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), or remove them")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Kafka.SASL.Username == "" {
			bad("kafka-sasl-username", "SASL %s needs a user name", c.Kafka.SASL.Mechanism)
		}
	default:
		bad("kafka-sasl-mechanism", "%s", oneOf(c.Kafka.SASL.Mechanism, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
	}
	if (c.Kafka.TLS.CertFile == "") != (c.Kafka.TLS.KeyFile == "") {
		bad("kafka-tls-cert-file", "mutual TLS needs both --kafka-tls-cert-file and --kafka-tls-key-file")
	}
	if t := c.Kafka.TLS; !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify) {
		bad("kafka-tls-enabled", "false (plaintext), but TLS settings are given (CA, client certificate or insecure-skip-verify); enable TLS, or remove them")
	}
	// `winback config --effective` prints Redacted in place of secrets;
	// fed back through --config, it would be sent as the password.
	for _, s := range []struct{ flag, secret string }{{"kafka-sasl-password", c.Kafka.SASL.Password}, {"registry-password", c.Registry.Password},
		{"clickhouse-dsn", urlPassword(c.ClickHouse.DSN)}, {"registry-url", urlPassword(c.Registry.URL)}} {
		if s.secret == Redacted {
			bad(s.flag, "its password is %q, the placeholder `winback config --effective` prints for a secret; give the real one (a flag, or its WINBACK_* variable, which overrides --config)", Redacted)
		}
	}
	if c.Registry.Password != "" && c.Registry.Username == "" {
		bad("registry-username", "empty, but a registry password is set; basic auth needs both, or neither")
	}
	if u, err := url.Parse(c.Registry.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("registry-url", "%q is not an http(s) URL, e.g. http://registry:8081", Redact(c.Registry.URL))
	}
	if c.Registry.Retry < 0 {
		bad("registry-retry", "negative duration")
	}
	if u, err := url.Parse(c.ClickHouse.DSN); err != nil || (u.Scheme != "clickhouse" && u.Scheme != "tcp") || u.Host == "" {
		bad("clickhouse-dsn", "%q is not a native-protocol DSN, e.g. clickhouse://default:@127.0.0.1:9000/default", Redact(c.ClickHouse.DSN))
	} else if !validPorts(u.Host) {
		bad("clickhouse-dsn", "%q: give each host a port from 1 to 65535; the native protocol listens on 9000 usually (clickhouse://host:9000/db)", Redact(c.ClickHouse.DSN))
	}
	if !isIdent(c.ClickHouse.Database) {
		bad("clickhouse-database", "%q is not a plain identifier (letters, digits, _)", c.ClickHouse.Database)
	}
	if c.ClickHouse.Cluster != "" && !isIdent(c.ClickHouse.Cluster) {
		bad("clickhouse-cluster", "%q is not a plain identifier (letters, digits, _), as in remote_servers", c.ClickHouse.Cluster)
	}
	if c.ClickHouse.Replicated && c.ClickHouse.Cluster == "" {
		bad("clickhouse-replicated", "needs --clickhouse-cluster: replicated tables live on a cluster")
	}
	for _, ttl := range []struct {
		flag string
		days int
	}{{"clickhouse-ttl-daily-days", c.ClickHouse.TTLDailyDays}, {"clickhouse-ttl-trigger-days", c.ClickHouse.TTLTriggerDays}, {"clickhouse-ttl-dead-letter-days", c.ClickHouse.TTLDeadLetterDays}} {
		if ttl.days < 0 {
			bad(ttl.flag, "%d; must be 0 (keep forever) or a number of days", ttl.days)
		}
	}
	if c.ClickHouse.BatchRows < 1 {
		bad("clickhouse-batch-rows", "%d; must be at least 1 (100000 is a good size)", c.ClickHouse.BatchRows)
	}
	if c.ClickHouse.AttemptTimeout <= 0 {
		bad("clickhouse-attempt-timeout", "must be positive, e.g. 10s")
	} else if c.Kafka.TxnTimeout >= time.Second && c.ClickHouse.AttemptTimeout > c.Kafka.TxnTimeout/2 {
		bad("clickhouse-attempt-timeout", "%s outlasts the ClickHouse flush deadline, half of --kafka-transaction-timeout (%s): not one insert could finish before the open transaction must abort; lower it or raise the transaction timeout",
			c.ClickHouse.AttemptTimeout, c.Kafka.TxnTimeout/2)
	}
	if c.Kafka.TxnTimeout >= time.Second && c.Registry.Retry >= c.Kafka.TxnTimeout {
		bad("registry-retry", "%s outlasts --kafka-transaction-timeout (%s): a lookup retried inside a transaction would outlive it and fence the instance; lower it below the transaction timeout",
			c.Registry.Retry, c.Kafka.TxnTimeout)
	}
	if c.ClickHouse.ActiveDays < 1 {
		bad("clickhouse-active-days", "%d; must be at least 1", c.ClickHouse.ActiveDays)
	}
	topics := map[string]string{
		"topics-orders": c.Topics.Orders, "topics-email": c.Topics.Email, "topics-support": c.Topics.Support,
		"topics-triggers": c.Topics.Triggers, "topics-dlq": c.Topics.DLQ, "topics-state": c.Topics.State,
		"topics-repartition": c.RepartitionTopic(), "topics-progress": c.ProgressTopic(), "topics-erasures": c.Topics.Erasures,
	}
	seen := map[string]string{}
	for _, flag := range []string{"topics-orders", "topics-email", "topics-support", "topics-triggers", "topics-dlq", "topics-state", "topics-repartition", "topics-progress", "topics-erasures"} {
		name := topics[flag]
		if name == "" {
			bad(flag, "empty topic name")
			continue
		}
		if other, ok := seen[name]; ok {
			bad(flag, "topic %q is also --%s; every topic must be distinct", name, other)
		}
		seen[name] = flag
	}
	if c.Topics.Partitions < 0 {
		bad("topics-partitions", "negative")
	}
	if g := c.Runtime.GOGC; g == 0 || g < -1 || g > 10000 {
		bad("runtime-gogc", "%d; use 1 to 10000 (percent of heap growth between collections, e.g. 200), or -1 (off, with runtime-memory-limit-ratio above 0)", g)
	} else if g == -1 && c.Runtime.MemoryLimitRatio == 0 {
		bad("runtime-gogc", "-1 turns the collector off, and with runtime-memory-limit-ratio 0 nothing would ever collect; set the ratio (e.g. 0.9) or a positive GOGC")
	}
	if r := c.Runtime.MemoryLimitRatio; !(r >= 0 && r <= 1) {
		bad("runtime-memory-limit-ratio", "%v; use a fraction of the container's memory limit above 0 and at most 1 (e.g. 0.9), or 0 to leave the limit alone", r)
	}
	if c.State.CacheMaxBytes < 0 {
		bad("state-cache-max-bytes", "%d; must be 0 (no bound) or positive, e.g. 67108864 (64 MiB)", c.State.CacheMaxBytes)
	}
	if c.State.TTLDays < 0 || c.State.TTLDays > 100*365 {
		bad("state-ttl-days", "%d; must be between 0 (keep customers forever) and 36500, e.g. 1095 (3 years)", c.State.TTLDays)
	}
	if c.InputPartitioning != "auto" && c.InputPartitioning != "strict" {
		bad("input-partitioning", "%q; use auto (route misplaced records through the repartition topic) or strict (dead-letter them)", c.InputPartitioning)
	}
	if c.TriggerFormat != "avro" && c.TriggerFormat != "json" {
		bad("trigger-format", "%s", oneOf(c.TriggerFormat, "avro", "json"))
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil || !validPort(port, 0) {
		bad("http-addr", "%q is not host:port with a port from 0 to 65535 (e.g. :8080)", c.HTTPAddr)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive, e.g. 30s")
	}
	if c.StartupTimeout <= 0 {
		bad("startup-timeout", "must be positive, e.g. 30s")
	}
	if c.CommitInterval <= 0 {
		bad("commit-interval", "must be positive, e.g. 1s")
	} else if c.Kafka.TxnTimeout >= time.Second && c.CommitInterval > c.Kafka.TxnTimeout/2 {
		bad("commit-interval", "%s outlasts half of --kafka-transaction-timeout (%s): a transaction takes input for up to the interval and then waits up to half the timeout for the previous one's ClickHouse flush, and the broker aborts a transaction that outlives the timeout; lower it or raise the transaction timeout",
			c.CommitInterval, c.Kafka.TxnTimeout/2)
	}
	if c.MaxPollRecords < 1 {
		bad("max-poll-records", "must be at least 1")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" && c.LogFormat != "auto" {
		bad("log-format", "%s", oneOf(c.LogFormat, "auto", "text", "json"))
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("log-level", "%v", err)
	}
	if c.DLQMaxValueBytes < 1024 {
		bad("dlq-max-value-bytes", "%d is too small; at least 1024", c.DLQMaxValueBytes)
	}
	// A dead letter carries up to 24 KiB beside its value (a key cut to
	// 4 KiB, source headers cut to 16 KiB, winback's own headers:
	// kafka.DeadLetterOverhead), and must fit the producer's batch limit
	// of 1,000,012 bytes (kafka.DefaultMaxBatchBytes).
	if c.DLQMaxValueBytes > 950<<10 {
		bad("dlq-max-value-bytes", "%d is too large: with the key and headers a dead letter may carry beside it, it would not fit the producer's 1,000,012-byte batch limit; at most 972800 (950 KiB)", c.DLQMaxValueBytes)
	}
	if c.MaxValueBytes < 1024 {
		bad("max-value-bytes", "%d is too small; at least 1024", c.MaxValueBytes)
	}
	if c.Decode.MaxFutureSkew <= 0 {
		bad("decode-max-future-skew", "must be positive, e.g. 5m (raise it only if producers' clocks run ahead)")
	}
	if err := c.Lapse.Validate(); err != nil {
		errs = append(errs, lapseErrors(c, err)...)
	}
	return errors.Join(errs...)
}

// lapseErrors names the setting (as its flag, like every other problem)
// of each of lapse's field errors: the flag of the field, or of the map
// whose entry it is.
func lapseErrors(c *Config, err error) []error {
	flags := map[string]string{}
	for _, s := range Settings(c) {
		flags[s.Key] = s.Flag
	}
	var out []error
	for _, e := range unwrapAll(err) {
		var fe *lapse.FieldError
		if !errors.As(e, &fe) {
			out = append(out, fmt.Errorf("lapse: %w", e))
			continue
		}
		full := "lapse." + fe.Field
		named := fmt.Errorf("%s: %s", full, fe.Problem)
		for key := full; key != ""; key = key[:max(strings.LastIndexByte(key, '.'), 0)] {
			if flag, ok := flags[key]; ok {
				entry := strings.TrimPrefix(strings.TrimPrefix(full, key), ".")
				if entry != "" {
					entry += ": " // the map's entry
				}
				named = fmt.Errorf("--%s: %s%s", flag, entry, fe.Problem)
				break
			}
		}
		out = append(out, named)
	}
	return out
}

// unwrapAll returns the errors joined in err, or err alone.
func unwrapAll(err error) []error {
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		return multi.Unwrap()
	}
	return []error{err}
}

// Warnings returns what is valid but likely a mistake, one line each.
func (c *Config) Warnings() []string {
	var w []string
	if ttl := c.State.TTLDays; ttl > 0 && float64(ttl) <= c.Lapse.Lapse.MaxGapDays {
		w = append(w, fmt.Sprintf("state.ttl_days (%d) is not longer than lapse.purchase_lapse.max_gap_days (%v): a customer silent for %d days is evicted, and a lapse due later never fires; raise the TTL above it, or set 0", ttl, c.Lapse.Lapse.MaxGapDays, ttl))
	}
	return w
}

// RepartitionTopic is the repartition topic's name: Topics.Repartition, or
// <group>-repartition.
func (c *Config) RepartitionTopic() string {
	if c.Topics.Repartition != "" {
		return c.Topics.Repartition
	}
	return c.Kafka.Group + "-repartition"
}

// ProgressTopic is the progress topic's name: Topics.Progress, or
// <group>-progress.
func (c *Config) ProgressTopic() string {
	if c.Topics.Progress != "" {
		return c.Topics.Progress
	}
	return c.Kafka.Group + "-progress"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validPort reports whether port is a decimal port number from min to
// 65535.
func validPort(port string, min int) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= min && n <= 65535 && port == strconv.Itoa(n)
}

// validPorts reports whether every host of a DSN's host list
// (host:port,host:port) has a valid port.
func validPorts(hosts string) bool {
	for h := range strings.SplitSeq(hosts, ",") {
		if _, port, err := net.SplitHostPort(h); err != nil || !validPort(port, 1) {
			return false
		}
	}
	return true
}
